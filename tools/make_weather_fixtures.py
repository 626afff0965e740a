"""make_weather_fixtures.py - small ERA5-like weather files, and what the reference stack reads from them.

Aurora's ERA5 example (microsoft/aurora, docs/example_era5) downloads three
NetCDF files from the Copernicus Climate Data Store (surface, atmospheric and
static variables), opens them with xarray.open_dataset and builds a Batch from
the arrays. The C library reads such files with libnetcdf instead, and must
arrive at the same numbers bit for bit. This script writes small files in the
layouts the C reader has to cope with, and for each readable case the arrays
the Python stack produces from them under the reference's conventions:

    era5_cds_new/   the current CDS layout: NetCDF4/HDF5, zlib, float32 data,
                    dims (valid_time, [pressure_level,] latitude, longitude),
                    scalar `number`/`expver` coordinates
    era5_cds_old/   the former CDS layout: classic 64-bit-offset NetCDF, int16
                    data packed with per-file scale_factor/add_offset, missing
                    cells, surface split over two files in time
    flip_roll/      one NetCDF4 file with latitudes increasing, longitudes in
                    [-180, 180), (lon, lat) dimension order, levels in Pa and
                    float "days since" time
    wb2_zarr/       a WeatherBench2-style Zarr v2 store (uncompressed, since
                    Debian's NCZarr cannot decode Blosc/zlib chunks), plus the
                    same store with xarray's default Blosc compressor, which
                    the C reader must refuse with a clear error
    bad/            classic NetCDF files (small: no HDF5 overhead) with one problem each, for error tests

The expected arrays go to `expected.safetensors` in each of the first four
case directories:

    surf/{2t,10u,10v,msl}     float32 (1, T, H, W)
    atmos/{t,u,v,q,z}         float32 (1, T, C, H, W), levels in the file's order
    static/{z,slt,lsm}        float32 (H, W), the first time step if the file has one
    meta/lat, meta/lon        float32 (H,), (W,): latitudes decreasing, longitudes in [0, 360) increasing
    meta/levels               float32 (C,) in hPa
    metadata (strings): surf_vars, static_vars, atmos_vars (comma-joined Aurora
    names), time_unix (last step, unix seconds), times_unix (all steps),
    step_seconds, rollout_step ("0").

Values are whatever xarray decodes (float32 data stays float32; packed int16
with a double scale decodes to float64), converted with .astype(np.float32);
fill values decode to NaN and stay NaN.

    python3 tools/make_weather_fixtures.py

Needs numpy, xarray, netCDF4, zarr (3.x, writing format 2) and safetensors.
Writes tests/fixtures/weather/ (replacing it).
"""
import os
import shutil

import netCDF4
import numpy as np
import xarray as xr
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "weather")
SEED = 20230101

# Aurora's variable names, in the order the reference's example builds its Batch.
SURF_VARS = ["2t", "10u", "10v", "msl"]
ATMOS_VARS = ["t", "u", "v", "q", "z"]
STATIC_VARS = ["z", "slt", "lsm"]

# ERA5 short names (as the CDS writes them) -> Aurora names.
CDS_SURF = {"t2m": "2t", "u10": "10u", "v10": "10v", "msl": "msl"}
CDS_ATMOS = {"t": "t", "u": "u", "v": "v", "q": "q", "z": "z"}
CDS_STATIC = {"z": "z", "slt": "slt", "lsm": "lsm"}

# Units attributes as the CDS writes them.
CDS_UNITS = {
    "t2m": "K", "u10": "m s**-1", "v10": "m s**-1", "msl": "Pa",
    "t": "K", "u": "m s**-1", "v": "m s**-1", "q": "kg kg**-1", "z": "m**2 s**-2",
    "lsm": "(0 - 1)", "slt": "~",
}
CDS_LONG_NAMES = {
    "t2m": "2 metre temperature", "u10": "10 metre U wind component",
    "v10": "10 metre V wind component", "msl": "Mean sea level pressure",
    "t": "Temperature", "u": "U component of wind", "v": "V component of wind",
    "q": "Specific humidity", "z": "Geopotential", "lsm": "Land-sea mask", "slt": "Soil type",
}

# WeatherBench2 ERA5 names -> Aurora names.
WB2_SURF = {"2m_temperature": "2t", "10m_u_component_of_wind": "10u",
            "10m_v_component_of_wind": "10v", "mean_sea_level_pressure": "msl"}
WB2_ATMOS = {"temperature": "t", "u_component_of_wind": "u", "v_component_of_wind": "v",
             "specific_humidity": "q", "geopotential": "z"}
WB2_STATIC = {"geopotential_at_surface": "z", "land_sea_mask": "lsm", "soil_type": "slt"}


# --------------------------------------------------------------------------
# Plausible random values
# --------------------------------------------------------------------------

def physical_values(rng, kind, shape, dtype=np.float32):
    """Random values in a physically plausible range for one ERA5 quantity.

    `kind` is an ERA5 short name (t2m, u10, v10, msl, t, u, v, q, z, lsm,
    slt) or "zsurf" for surface geopotential and "zm" for geopotential height
    in metres. slt is a small integer category (0..7) stored as float.
    """
    if kind in ("t2m", "t"):
        x = rng.uniform(250.0, 300.0, shape)
    elif kind in ("u10", "v10", "u", "v"):
        x = rng.uniform(-20.0, 20.0, shape)
    elif kind == "msl":
        x = rng.uniform(97000.0, 104000.0, shape)
    elif kind == "q":
        x = rng.uniform(1e-5, 2e-3, shape)
    elif kind == "z":  # upper-air geopotential, m**2 s**-2
        x = rng.uniform(1e3, 2e5, shape)
    elif kind == "zsurf":  # surface geopotential (orography), m**2 s**-2
        x = rng.uniform(-500.0, 5e4, shape)
    elif kind == "zm":  # geopotential height, m
        x = rng.uniform(100.0, 12000.0, shape)
    elif kind == "lsm":
        x = rng.uniform(0.0, 1.0, shape)
        x[rng.uniform(size=shape) < 0.3] = 0.0  # some pure sea
        x[rng.uniform(size=shape) < 0.3] = 1.0  # and some pure land
    elif kind == "slt":
        x = rng.integers(0, 8, shape).astype(np.float64)
    else:
        raise ValueError(kind)
    return x.astype(dtype)


def hours(start, steps_h):
    """datetime64[ns] times at the given hour offsets from `start`."""
    t0 = np.datetime64(start, "ns")
    return np.array([t0 + np.timedelta64(int(h * 3600), "s") for h in steps_h], dtype="datetime64[ns]")


# --------------------------------------------------------------------------
# What the reference stack reads
# --------------------------------------------------------------------------

def normalise(ds, time, level, lat, lon, renames):
    """Apply the reference's conventions to one group of variables.

    Keeps only the renamed variables, sorts by time, makes latitudes
    decreasing, longitudes [0, 360) increasing (rolling the data with them)
    and puts the dimensions in the (time, level, lat, lon) order.
    """
    ds = ds[list(renames)].rename(renames)
    if time is not None and time in ds.dims:
        ds = ds.sortby(time)
    if ds[lat].values[0] < ds[lat].values[-1]:
        ds = ds.isel({lat: slice(None, None, -1)})
    ds = ds.assign_coords({lon: ds[lon] % 360}).sortby(lon)
    order = [d for d in (time, level, lat, lon) if d is not None and d in ds.dims]
    return ds.transpose(*order, ...)


def reference_batch(surf, atmos, static, dims, surf_names, atmos_names, static_names):
    """The arrays the reference's ERA5 recipe builds, as a safetensors dict and metadata.

    `surf`, `atmos`: lists of opened datasets (concatenated in time);
    `static`: one dataset; `dims`: names of the time/level/lat/lon dimensions;
    `*_names`: file name -> Aurora name.
    """
    time, level, lat, lon = dims["time"], dims["level"], dims["lat"], dims["lon"]
    cat = lambda dss: dss[0] if len(dss) == 1 else xr.concat(dss, dim=time)
    s = normalise(cat(surf), time, None, lat, lon, surf_names)
    a = normalise(cat(atmos), time, level, lat, lon, atmos_names)
    st = normalise(static, time, None, lat, lon, static_names)
    if time in st.dims:
        st = st.isel({time: 0})

    # the three groups must agree on the grid, surface and atmosphere on the times
    for other in (a, st):
        assert np.array_equal(s[lat].values, other[lat].values)
        assert np.array_equal(s[lon].values, other[lon].values)
    assert np.array_equal(s[time].values, a[time].values)

    tensors = {}
    for name in SURF_VARS:
        tensors[f"surf/{name}"] = s[name].values[None].astype(np.float32)
    for name in ATMOS_VARS:
        tensors[f"atmos/{name}"] = a[name].values[None].astype(np.float32)
    for name in STATIC_VARS:
        tensors[f"static/{name}"] = st[name].values.astype(np.float32)

    levels = a[level].values.astype(np.float64)
    if a[level].attrs.get("units") == "Pa":
        levels = levels / 100.0
    tensors["meta/lat"] = s[lat].values.astype(np.float32)
    tensors["meta/lon"] = s[lon].values.astype(np.float32)
    tensors["meta/levels"] = levels.astype(np.float32)

    unix = s[time].values.astype("datetime64[s]").astype(np.int64)
    steps = np.unique(np.diff(unix))
    assert len(steps) == 1, "the expected files assume evenly spaced times"
    metadata = {
        "surf_vars": ",".join(SURF_VARS),
        "static_vars": ",".join(STATIC_VARS),
        "atmos_vars": ",".join(ATMOS_VARS),
        "time_unix": str(int(unix[-1])),
        "times_unix": ",".join(str(int(u)) for u in unix),
        "step_seconds": str(int(steps[0])),
        "rollout_step": "0",
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    return tensors, metadata


def save_expected(case_dir, tensors, metadata):
    save_file(tensors, os.path.join(case_dir, "expected.safetensors"), metadata=metadata)


# --------------------------------------------------------------------------
# Case 1: the current CDS layout (NetCDF4)
# --------------------------------------------------------------------------

def case_era5_cds_new(rng):
    """surface.nc, atmospheric.nc and static.nc as the current CDS delivers them.

    float32 data compressed with zlib level 1, valid_time int64 seconds since
    1970, pressure_level float64 in hPa (1000, 850, 500: the CDS's order),
    float64 latitude (90..-90) and longitude (0..337.5), and the scalar
    `number` and `expver` coordinates the CDS attaches to every variable.
    """
    d = os.path.join(OUT, "era5_cds_new")
    os.makedirs(d)
    lat = np.arange(90.0, -90.1, -22.5)           # 9, decreasing
    lon = np.arange(0.0, 360.0, 22.5)             # 16
    plev = np.array([1000.0, 850.0, 500.0])       # hPa, in the CDS's order
    times = hours("2023-01-01T00", [0, 6, 12, 18])
    T, C, H, W = len(times), len(plev), len(lat), len(lon)

    def coords(valid_time, with_levels):
        c = {
            "valid_time": ("valid_time", valid_time, {"long_name": "time", "standard_name": "time"}),
            "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude",
                                           "long_name": "latitude", "stored_direction": "decreasing"}),
            "longitude": ("longitude", lon, {"units": "degrees_east", "standard_name": "longitude",
                                             "long_name": "longitude"}),
            "number": ((), np.int64(0), {"long_name": "ensemble member numerical id", "units": "1",
                                         "standard_name": "realization"}),
            "expver": ((), "0001", {"long_name": "model experiment version"}),
        }
        if with_levels:
            c["pressure_level"] = ("pressure_level", plev, {"units": "hPa", "long_name": "pressure",
                                                            "standard_name": "air_pressure",
                                                            "positive": "down", "stored_direction": "decreasing"})
        return c

    def write(name, data_vars, valid_time, with_levels):
        ds = xr.Dataset(data_vars, coords=coords(valid_time, with_levels),
                        attrs={"GRIB_centre": "ecmf", "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
                               "Conventions": "CF-1.7", "institution": "European Centre for Medium-Range Weather Forecasts"})
        enc = {v: {"zlib": True, "complevel": 1} for v in ds.data_vars}
        enc["valid_time"] = {"units": "seconds since 1970-01-01", "dtype": "int64"}
        for c in ("latitude", "longitude", "pressure_level"):
            if c in ds.coords:
                enc[c] = {"_FillValue": None}  # the CDS writes no fill value on coordinates
        ds.to_netcdf(os.path.join(d, name), format="NETCDF4", engine="netcdf4", encoding=enc)

    def var(name, dims, shape, kind=None):
        """One data variable with the CDS's attributes; `kind` picks the value range (default: name)."""
        attrs = {"units": CDS_UNITS[name], "long_name": CDS_LONG_NAMES[name]}
        return (dims, physical_values(rng, kind or name, shape), attrs)

    sdims = ("valid_time", "latitude", "longitude")
    adims = ("valid_time", "pressure_level", "latitude", "longitude")
    write("surface.nc", {v: var(v, sdims, (T, H, W)) for v in CDS_SURF}, times, False)
    write("atmospheric.nc", {v: var(v, adims, (T, C, H, W)) for v in CDS_ATMOS}, times, True)
    static = {"z": var("z", sdims, (1, H, W), kind="zsurf"), "slt": var("slt", sdims, (1, H, W)),
              "lsm": var("lsm", sdims, (1, H, W))}
    write("static.nc", static, times[:1], False)

    dims = {"time": "valid_time", "level": "pressure_level", "lat": "latitude", "lon": "longitude"}
    with xr.open_dataset(os.path.join(d, "surface.nc")) as s, \
            xr.open_dataset(os.path.join(d, "atmospheric.nc")) as a, \
            xr.open_dataset(os.path.join(d, "static.nc")) as st:
        save_expected(d, *reference_batch([s], [a], st, dims, CDS_SURF, CDS_ATMOS, CDS_STATIC))
    return T, C, H, W


# --------------------------------------------------------------------------
# Case 2: the former CDS layout (classic NetCDF, packed int16)
# --------------------------------------------------------------------------

FILL_SHORT = np.int16(-32767)


def pack_cds(values):
    """Pack float values to int16 the way the CDS's converter does.

    scale = (max - min) / (2**16 - 2), offset = (max + min) / 2, over the
    cells that are not missing (NaN). With that scale the minimum lands on
    -32767, the fill value itself; it is clipped to -32766 so that no real
    value reads back as missing. Missing cells get the fill value.
    """
    ok = ~np.isnan(values)
    vmin, vmax = float(values[ok].min()), float(values[ok].max())
    scale = (vmax - vmin) / (2 ** 16 - 2)
    offset = (vmax + vmin) / 2.0
    if scale == 0.0:
        scale = 1.0
    packed = np.clip(np.round((np.where(ok, values, offset) - offset) / scale), -32766, 32767)
    packed = packed.astype(np.int16)
    packed[~ok] = FILL_SHORT
    return packed, np.float64(scale), np.float64(offset)


def write_cds_old(path, times, lat, lon, levels, variables):
    """One classic (64-bit offset) NetCDF file as the former CDS wrote them.

    `times`: datetime64 values, written as int32 hours since 1900; `levels`:
    None for single-level files; `variables`: ERA5 short name -> float64
    array (NaN where missing), packed here with pack_cds.
    """
    hours1900 = ((times - np.datetime64("1900-01-01T00", "ns")) // np.timedelta64(1, "h")).astype(np.int32)
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as nc:
        nc.Conventions = "CF-1.6"
        nc.history = "2023-02-01 12:00:00 GMT by grib_to_netcdf-2.25.1: /opt/ecmwf/mars-client/bin/grib_to_netcdf.bin -S param -o output.nc input.grib"
        nc.createDimension("longitude", len(lon))
        nc.createDimension("latitude", len(lat))
        if levels is not None:
            nc.createDimension("level", len(levels))
        nc.createDimension("time", None)  # the CDS made time the record dimension

        v = nc.createVariable("longitude", "f4", ("longitude",))
        v.units, v.long_name = "degrees_east", "longitude"
        v[:] = lon.astype(np.float32)
        v = nc.createVariable("latitude", "f4", ("latitude",))
        v.units, v.long_name = "degrees_north", "latitude"
        v[:] = lat.astype(np.float32)
        if levels is not None:
            v = nc.createVariable("level", "i4", ("level",))
            v.units, v.long_name = "millibars", "pressure_level"
            v[:] = np.asarray(levels, dtype=np.int32)
        v = nc.createVariable("time", "i4", ("time",))
        v.units, v.long_name, v.calendar = "hours since 1900-01-01 00:00:00.0", "time", "gregorian"
        v[:] = hours1900

        dims = ("time", "level", "latitude", "longitude") if levels is not None else ("time", "latitude", "longitude")
        for name, values in variables.items():
            packed, scale, offset = pack_cds(values)
            v = nc.createVariable(name, "i2", dims, fill_value=FILL_SHORT)
            # write the int16s as they are: the Dataset-wide switch does not
            # reach variables created after it, so turn it off on each one
            v.set_auto_maskandscale(False)
            v.scale_factor = scale
            v.add_offset = offset
            v.missing_value = FILL_SHORT
            v.units = CDS_UNITS[name]
            v.long_name = CDS_LONG_NAMES[name]
            v[:] = packed
            assert np.array_equal(v[:], packed)


def case_era5_cds_old(rng):
    """surface_day1.nc, surface_day2.nc, atmospheric.nc and static.nc in the former CDS layout.

    Levels are written 500, 850, 1000 (the old CDS's order); a few cells of
    t2m and t are missing; each file packs with its own scale and offset.
    """
    d = os.path.join(OUT, "era5_cds_old")
    os.makedirs(d)
    lat = np.arange(60.0, -60.1, -30.0)   # 5, decreasing
    lon = np.arange(0.0, 360.0, 45.0)     # 8
    levels = [500, 850, 1000]
    times = hours("2023-01-01T00", [0, 6, 12, 18, 24, 30])
    T, C, H, W = len(times), len(levels), len(lat), len(lon)

    surf = {v: physical_values(rng, v, (T, H, W), np.float64) for v in CDS_SURF}
    surf["t2m"][0, 1, 2] = np.nan   # day 1
    surf["t2m"][2, 4, 7] = np.nan   # day 1
    surf["t2m"][5, 0, 0] = np.nan   # day 2
    atmos = {v: physical_values(rng, v, (T, C, H, W), np.float64) for v in CDS_ATMOS}
    atmos["t"][1, 0, 3, 5] = np.nan
    atmos["t"][3, 2, 2, 2] = np.nan
    atmos["t"][5, 1, 0, 7] = np.nan
    static = {"z": physical_values(rng, "zsurf", (1, H, W), np.float64),
              "slt": physical_values(rng, "slt", (1, H, W), np.float64),
              "lsm": physical_values(rng, "lsm", (1, H, W), np.float64)}

    write_cds_old(os.path.join(d, "surface_day1.nc"), times[:4], lat, lon, None, {k: v[:4] for k, v in surf.items()})
    write_cds_old(os.path.join(d, "surface_day2.nc"), times[4:], lat, lon, None, {k: v[4:] for k, v in surf.items()})
    write_cds_old(os.path.join(d, "atmospheric.nc"), times, lat, lon, levels, atmos)
    write_cds_old(os.path.join(d, "static.nc"), times[:1], lat, lon, None, static)

    dims = {"time": "time", "level": "level", "lat": "latitude", "lon": "longitude"}
    with xr.open_dataset(os.path.join(d, "surface_day1.nc")) as s1, \
            xr.open_dataset(os.path.join(d, "surface_day2.nc")) as s2, \
            xr.open_dataset(os.path.join(d, "atmospheric.nc")) as a, \
            xr.open_dataset(os.path.join(d, "static.nc")) as st:
        print(f"  era5_cds_old: xarray decodes the packed t2m to {s1['t2m'].dtype}, time to {s1['time'].dtype}")
        save_expected(d, *reference_batch([s1, s2], [a], st, dims, CDS_SURF, CDS_ATMOS, CDS_STATIC))
    return T, C, H, W


# --------------------------------------------------------------------------
# Case 3: everything in one file, flipped and rolled
# --------------------------------------------------------------------------

FLIP_STATIC = {"geopotential_at_surface": "z", "land_sea_mask": "lsm", "soil_type": "slt"}


def case_flip_roll(rng):
    """all.nc: latitudes increasing, longitudes -180..135, (lon, lat) order, levels in Pa.

    Surface, atmospheric and static variables share one NetCDF4 file; the
    static ones have no time dimension and long names (static z cannot share
    the name of atmospheric z). time is float64 "days since 2000-01-01".
    """
    d = os.path.join(OUT, "flip_roll")
    os.makedirs(d)
    lat = np.arange(-60.0, 60.1, 30.0)      # 5, increasing
    lon = np.arange(-180.0, 180.0, 45.0)    # 8, [-180, 180)
    plev = np.array([50000.0, 85000.0])     # Pa
    times = hours("2000-01-01T00", [0, 6, 12])
    T, C, H, W = len(times), len(plev), len(lat), len(lon)

    sdims, adims, stdims = ("time", "longitude", "latitude"), ("time", "plev", "longitude", "latitude"), ("longitude", "latitude")
    data = {}
    for v in CDS_SURF:
        data[v] = (sdims, physical_values(rng, v, (T, W, H)), {"units": CDS_UNITS[v]})
    for v in CDS_ATMOS:
        data[v] = (adims, physical_values(rng, v, (T, C, W, H)), {"units": CDS_UNITS[v]})
    data["geopotential_at_surface"] = (stdims, physical_values(rng, "zsurf", (W, H)), {"units": "m**2 s**-2"})
    data["land_sea_mask"] = (stdims, physical_values(rng, "lsm", (W, H)), {"units": "(0 - 1)"})
    data["soil_type"] = (stdims, physical_values(rng, "slt", (W, H)), {"units": "~"})
    ds = xr.Dataset(data, coords={
        "time": ("time", times),
        "plev": ("plev", plev, {"units": "Pa", "standard_name": "air_pressure"}),
        "latitude": ("latitude", lat, {"units": "degrees_north"}),
        "longitude": ("longitude", lon, {"units": "degrees_east"}),
    })
    enc = {"time": {"units": "days since 2000-01-01", "dtype": "float64", "_FillValue": None}}
    for c in ("plev", "latitude", "longitude"):
        enc[c] = {"_FillValue": None}
    path = os.path.join(d, "all.nc")
    ds.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=enc)

    dims = {"time": "time", "level": "plev", "lat": "latitude", "lon": "longitude"}
    with xr.open_dataset(path) as f:
        save_expected(d, *reference_batch([f], [f], f, dims, CDS_SURF, CDS_ATMOS, FLIP_STATIC))
    return T, C, H, W


# --------------------------------------------------------------------------
# Case 4: a WeatherBench2-style Zarr v2 store
# --------------------------------------------------------------------------

def case_wb2_zarr(rng):
    """era5.zarr (uncompressed) and era5_blosc.zarr (xarray's default Blosc).

    WeatherBench2's ERA5 names and dimension order (time, level, longitude,
    latitude), latitudes increasing -90..90, longitudes 0..300, int64 levels
    in hPa without a units attribute (as WB2's stores have), datetime64 time
    encoded by xarray, consolidated metadata.
    """
    d = os.path.join(OUT, "wb2_zarr")
    os.makedirs(d)
    lat = np.arange(-90.0, 90.1, 30.0)    # 7, increasing
    lon = np.arange(0.0, 360.0, 60.0)     # 6
    levels = np.array([500, 850], dtype=np.int64)
    times = hours("2020-01-01T00", [0, 6, 12, 18])
    T, C, H, W = len(times), len(levels), len(lat), len(lon)

    kinds = {"2m_temperature": "t2m", "10m_u_component_of_wind": "u10", "10m_v_component_of_wind": "v10",
             "mean_sea_level_pressure": "msl", "geopotential": "z", "temperature": "t",
             "u_component_of_wind": "u", "v_component_of_wind": "v", "specific_humidity": "q"}
    data = {}
    for name in WB2_SURF:
        data[name] = (("time", "longitude", "latitude"), physical_values(rng, kinds[name], (T, W, H)))
    for name in WB2_ATMOS:
        data[name] = (("time", "level", "longitude", "latitude"), physical_values(rng, kinds[name], (T, C, W, H)))
    data["geopotential_at_surface"] = (("longitude", "latitude"), physical_values(rng, "zsurf", (W, H)))
    data["land_sea_mask"] = (("longitude", "latitude"), physical_values(rng, "lsm", (W, H)))
    data["soil_type"] = (("longitude", "latitude"), physical_values(rng, "slt", (W, H)))
    ds = xr.Dataset(data, coords={"time": times, "level": levels, "latitude": lat, "longitude": lon})

    store = os.path.join(d, "era5.zarr")
    ds.to_zarr(store, zarr_format=2, consolidated=True, mode="w",
               encoding={v: {"compressors": None} for v in ds.variables})
    ds.to_zarr(os.path.join(d, "era5_blosc.zarr"), zarr_format=2, consolidated=True, mode="w")

    dims = {"time": "time", "level": "level", "lat": "latitude", "lon": "longitude"}
    f = xr.open_zarr(store, chunks=None)
    try:
        print(f"  wb2_zarr: time stored as {f['time'].encoding.get('dtype')} with units {f['time'].encoding.get('units')!r}")
        save_expected(d, *reference_batch([f], [f], f, dims, WB2_SURF, WB2_ATMOS, WB2_STATIC))
    finally:
        f.close()
    return T, C, H, W


# --------------------------------------------------------------------------
# Case 5: files with one problem each
# --------------------------------------------------------------------------

BAD_LAT = np.arange(60.0, -60.1, -30.0)   # 5
BAD_LON = np.arange(0.0, 360.0, 45.0)     # 8


def bad_dataset(rng, time_h, lat=BAD_LAT, calendar="proleptic_gregorian", surface=True, atmos=False, z_units="m**2 s**-2"):
    """A small NetCDF4-ready dataset: surface and/or atmospheric variables.

    Time is written as raw int "hours since 2023-01-01" numbers with the given
    calendar attribute, so odd times (uneven, duplicated, non-standard
    calendars) go to the file as they are.
    """
    T, H, W = len(time_h), len(lat), len(BAD_LON)
    levels = np.array([1000.0, 850.0])
    data = {}
    if surface:
        for v in CDS_SURF:
            data[v] = (("time", "latitude", "longitude"), physical_values(rng, v, (T, H, W)), {"units": CDS_UNITS[v]})
    if atmos:
        for v in CDS_ATMOS:
            kind = "zm" if (v == "z" and z_units == "m") else v
            units = z_units if v == "z" else CDS_UNITS[v]
            data[v] = (("time", "level", "latitude", "longitude"), physical_values(rng, kind, (T, len(levels), H, W)),
                       {"units": units})
    coords = {
        "time": ("time", np.asarray(time_h, dtype=np.int32),
                 {"units": "hours since 2023-01-01 00:00:00", "calendar": calendar, "long_name": "time"}),
        "latitude": ("latitude", lat, {"units": "degrees_north"}),
        "longitude": ("longitude", BAD_LON, {"units": "degrees_east"}),
    }
    if atmos:
        coords["level"] = ("level", levels, {"units": "hPa"})
    return xr.Dataset(data, coords=coords)


def write_bad(ds, name, encoding=None):
    enc = {c: {"_FillValue": None} for c in ds.coords if ds[c].dtype.kind == "f"}
    enc.update(encoding or {})
    ds.to_netcdf(os.path.join(OUT, "bad", name), format="NETCDF3_64BIT_OFFSET", engine="netcdf4", encoding=enc)


def case_bad(rng):
    """One problem per file: grids that disagree, uneven or repeated times,
    geopotential height in metres, a noleap calendar, fill values inside the
    data, and a data variable with an extra (ensemble) dimension."""
    os.makedirs(os.path.join(OUT, "bad"))

    # atmospheric latitudes 1 degree off the surface file's
    write_bad(bad_dataset(rng, [0, 6]), "grid_mismatch_surface.nc")
    write_bad(bad_dataset(rng, [0, 6], lat=BAD_LAT - 1.0, surface=False, atmos=True), "grid_mismatch_atmos.nc")

    write_bad(bad_dataset(rng, [0, 6, 18]), "uneven_time.nc")
    write_bad(bad_dataset(rng, [0, 6, 6]), "duplicate_time.nc")

    # geopotential height (m) where geopotential (m**2 s**-2) is expected; the
    # surface variables are there too, so the file can serve as both inputs
    write_bad(bad_dataset(rng, [0, 6], atmos=True, z_units="m"), "z_in_metres.nc")

    write_bad(bad_dataset(rng, [0, 6], calendar="noleap"), "noleap.nc")

    # three t2m cells hold the (non-NaN) _FillValue, so they read back as NaN
    ds = bad_dataset(rng, [0, 6])
    t2m = ds["t2m"].values.copy()
    t2m[0, 0, 0] = t2m[0, 2, 5] = t2m[1, 4, 7] = np.nan
    ds["t2m"] = (ds["t2m"].dims, t2m, ds["t2m"].attrs)
    write_bad(ds, "nan_fill.nc", {"t2m": {"_FillValue": np.float32(-9999.0)}})

    # t2m with an extra `ensemble` dimension (time, ensemble, latitude, longitude)
    ds = bad_dataset(rng, [0, 6])
    ds["t2m"] = (("time", "ensemble", "latitude", "longitude"),
                 physical_values(rng, "t2m", (2, 2, len(BAD_LAT), len(BAD_LON))), {"units": "K"})
    write_bad(ds, "three_d_lat.nc")


def main():
    rng = np.random.default_rng(SEED)
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    shapes = {}
    shapes["era5_cds_new"] = case_era5_cds_new(rng)
    shapes["era5_cds_old"] = case_era5_cds_old(rng)
    shapes["flip_roll"] = case_flip_roll(rng)
    shapes["wb2_zarr"] = case_wb2_zarr(rng)
    case_bad(rng)
    for case, (T, C, H, W) in shapes.items():
        print(f"  {case}: T={T} C={C} H={H} W={W}")
    total = 0
    for root, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            p = os.path.join(root, f)
            total += os.path.getsize(p)
    print(f"wrote {os.path.normpath(OUT)} ({total} bytes)")


if __name__ == "__main__":
    main()
