"""make_grib_fixtures.py - small GRIB files written by ecCodes, and what cfgrib reads from them.

Aurora's HRES example (microsoft/aurora, docs/example_hres_t0) opens GRIB
files with xarray's cfgrib engine, which decodes them with ecCodes. The C
library reads the same files with ecCodes' C API instead, and must arrive at
the same numbers bit for bit. This script writes the files with ecCodes
(its Python bindings, message by message from ecCodes' own samples) in the
layouts the C reader has to cope with, and for each readable case the arrays
cfgrib produces from them under the reference's conventions:

    hres/       GRIB2 as HRES analyses come: surface.grib2 (2t and 10u/10v on
                heightAboveGround, msl on meanSea), atmospheric.grib2 (t, u, v,
                q, z on isobaricInhPa), static.grib2 (z, lsm, slt on surface);
                three analysis times; messages in a shuffled order, levels
                neither sorted nor in cfgrib's order
    forecast/   one GRIB1 file holding everything, as a MARS retrieval gives
                it: one reference time and forecast steps 0, 6, 12 (the
                series runs over the valid times), latitudes increasing
                (jScansPositively), longitudes from -180, a bitmap of
                missing points in 2t, 12-bit packing
    bad/        one problem each: a reduced Gaussian grid, a truncated file,
                a level missing at one time, a message twice, model levels

The expected arrays go to `expected.safetensors` in each case directory, in
the layout of make_weather_fixtures.py (surf/, atmos/, static/, meta/ and
the metadata strings), levels in cfgrib's order (decreasing pressure).

    python3 tools/make_grib_fixtures.py

Needs numpy, xarray, cfgrib, eccodes (the Python bindings) and safetensors.
Writes tests/fixtures/grib/ (replacing it).
"""
import os
import shutil
import sys

import eccodes
import numpy as np
import xarray as xr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_weather_fixtures import ATMOS_VARS, STATIC_VARS, SURF_VARS, physical_values, save_expected  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "grib")
SEED = 20230102

LAT = np.arange(90.0, -90.1, -22.5)   # 9, as the NetCDF fixtures
LON = np.arange(0.0, 360.0, 22.5)     # 16
LEVELS = [500, 1000, 850]             # the order the messages come in

# ecCodes short names (which are Aurora's) -> the level type ecCodes gives them, and the value range.
SURF = {"2t": "t2m", "10u": "u10", "10v": "v10", "msl": "msl"}
ATMOS = {"t": "t", "u": "u", "v": "v", "q": "q", "z": "z"}
STATIC = {"z": "zsurf", "lsm": "lsm", "slt": "slt"}
# cfgrib's variable names -> Aurora's
CFGRIB_NAMES = {"t2m": "2t", "u10": "10u", "v10": "10v"}


def message(sample, short_name, values, when, level=None, level_type=None, step=0, lat=LAT, lon=LON, bits=16,
            missing=None):
    """One GRIB message from an ecCodes sample, on a regular lat-lon grid, as bytes.

    `values` is (len(lat), len(lon)) in the given latitude and longitude
    order; `when` is (yyyymmdd, hhmm) of the reference time; `missing` a
    boolean mask of points to leave out through the bitmap.
    """
    h = eccodes.codes_grib_new_from_samples(sample)
    try:
        south_first = lat[0] < lat[-1]
        eccodes.codes_set(h, "Ni", len(lon))
        eccodes.codes_set(h, "Nj", len(lat))
        eccodes.codes_set(h, "jScansPositively", 1 if south_first else 0)
        eccodes.codes_set(h, "latitudeOfFirstGridPointInDegrees", float(lat[0]))
        eccodes.codes_set(h, "latitudeOfLastGridPointInDegrees", float(lat[-1]))
        eccodes.codes_set(h, "longitudeOfFirstGridPointInDegrees", float(lon[0]))
        eccodes.codes_set(h, "longitudeOfLastGridPointInDegrees", float(lon[-1]))
        eccodes.codes_set(h, "iDirectionIncrementInDegrees", float(lon[1] - lon[0]))
        eccodes.codes_set(h, "jDirectionIncrementInDegrees", float(abs(lat[1] - lat[0])))
        eccodes.codes_set(h, "dataDate", when[0])
        eccodes.codes_set(h, "dataTime", when[1])
        eccodes.codes_set(h, "shortName", short_name)
        if level_type is not None:
            eccodes.codes_set(h, "typeOfLevel", level_type)
        if level is not None:
            eccodes.codes_set(h, "level", level)
        if step:
            eccodes.codes_set(h, "stepRange", str(step))
        eccodes.codes_set(h, "bitsPerValue", bits)
        flat = np.asarray(values, dtype=np.float64).ravel()
        if missing is not None:
            eccodes.codes_set(h, "bitmapPresent", 1)
            eccodes.codes_set(h, "missingValue", 9999.0)
            flat = np.where(missing.ravel(), 9999.0, flat)
        eccodes.codes_set_values(h, flat)
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def write(path, messages):
    with open(path, "wb") as f:
        for m in messages:
            f.write(m)


def open_cfgrib(path, **keys):
    return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"filter_by_keys": keys, "indexpath": ""})


def conventions(da, time_dim):
    """The reference's conventions on one cfgrib array: time sorted, latitudes decreasing, longitudes [0, 360)."""
    if time_dim in da.dims:
        da = da.sortby(time_dim)
    if da.latitude.values[0] < da.latitude.values[-1]:
        da = da.isel(latitude=slice(None, None, -1))
    da = da.assign_coords(longitude=da.longitude % 360).sortby("longitude")
    return da


def expected(surf, atmos, static, time_dim):
    """The batch arrays and metadata from cfgrib's arrays (dicts of Aurora name -> DataArray)."""
    tensors = {}
    for name in SURF_VARS:
        tensors[f"surf/{name}"] = conventions(surf[name], time_dim).values[None].astype(np.float32)
    for name in ATMOS_VARS:
        a = conventions(atmos[name], time_dim).transpose(time_dim, "isobaricInhPa", "latitude", "longitude")
        tensors[f"atmos/{name}"] = a.values[None].astype(np.float32)
    for name in STATIC_VARS:
        s = conventions(static[name], time_dim)
        tensors[f"static/{name}"] = (s.isel({time_dim: 0}) if time_dim in s.dims else s).values.astype(np.float32)
    ref = conventions(surf["2t"], time_dim)
    tensors["meta/lat"] = ref.latitude.values.astype(np.float32)
    tensors["meta/lon"] = ref.longitude.values.astype(np.float32)
    tensors["meta/levels"] = atmos["t"].isobaricInhPa.values.astype(np.float32)
    valid = ref.valid_time.values.astype("datetime64[s]").astype(np.int64)
    steps = np.unique(np.diff(valid))
    assert len(steps) == 1
    metadata = {
        "surf_vars": ",".join(SURF_VARS), "static_vars": ",".join(STATIC_VARS), "atmos_vars": ",".join(ATMOS_VARS),
        "time_unix": str(int(valid[-1])), "times_unix": ",".join(str(int(u)) for u in valid),
        "step_seconds": str(int(steps[0])), "rollout_step": "0",
    }
    return {k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata


def cfgrib_vars(ds, renames=CFGRIB_NAMES):
    return {renames.get(k, k): ds[k] for k in ds.data_vars}


# --------------------------------------------------------------------------
# Case 1: HRES-like GRIB2, three files
# --------------------------------------------------------------------------

def case_hres(rng):
    d = os.path.join(OUT, "hres")
    os.makedirs(d)
    times = [(20230101, 0), (20230101, 600), (20230101, 1200)]
    order = [2, 0, 1]  # the messages' time order in the files
    H, W = len(LAT), len(LON)
    surf = []
    for t in order:
        for name, kind in SURF.items():
            surf.append(message("GRIB2", name, physical_values(rng, kind, (H, W)), times[t], bits=24))
    write(os.path.join(d, "surface.grib2"), surf)
    atmos = []
    for t in order:
        for name, kind in ATMOS.items():
            for lev in LEVELS:
                atmos.append(message("GRIB2", name, physical_values(rng, kind, (H, W)), times[t], lev, "isobaricInhPa", bits=20))
    write(os.path.join(d, "atmospheric.grib2"), atmos)
    static = [message("GRIB2", n, physical_values(rng, k, (H, W)), times[0], 0, "surface", bits=16) for n, k in STATIC.items()]
    write(os.path.join(d, "static.grib2"), static)

    s = {}
    for keys in ({"typeOfLevel": "heightAboveGround", "level": 2}, {"typeOfLevel": "heightAboveGround", "level": 10},
                 {"typeOfLevel": "meanSea"}):
        s.update(cfgrib_vars(open_cfgrib(os.path.join(d, "surface.grib2"), **keys)))
    a = cfgrib_vars(open_cfgrib(os.path.join(d, "atmospheric.grib2"), typeOfLevel="isobaricInhPa"))
    st = cfgrib_vars(open_cfgrib(os.path.join(d, "static.grib2"), typeOfLevel="surface"))
    save_expected(d, *expected(s, a, st, "time"))


# --------------------------------------------------------------------------
# Case 2: GRIB1 forecast steps in one file, latitudes increasing, longitudes from -180
# --------------------------------------------------------------------------

def case_forecast(rng):
    d = os.path.join(OUT, "forecast")
    os.makedirs(d)
    lat, lon = LAT[::-1], np.concatenate([LON[8:] - 360.0, LON[:8]])
    H, W = len(lat), len(lon)
    steps = [0, 6, 12]
    when = (20221231, 1800)
    missing = rng.uniform(size=(H, W)) < 0.15
    msgs = [message("GRIB1", n, physical_values(rng, k, (H, W)), when, 0, "surface", lat=lat, lon=lon, bits=12) for n, k in STATIC.items()]
    for step in steps:
        for name, kind in SURF.items():
            msgs.append(message("GRIB1", name, physical_values(rng, kind, (H, W)), when, 0, "surface", step, lat, lon, 12,
                                missing=missing if name == "2t" else None))
        for name, kind in ATMOS.items():
            for lev in LEVELS:
                msgs.append(message("GRIB1", name, physical_values(rng, kind, (H, W)), when, lev, "isobaricInhPa", step, lat, lon, 12))
    path = os.path.join(d, "all.grib1")
    write(path, msgs)

    # cfgrib: the forecast steps are the "step" dimension, valid_time runs along it; one variable at a time
    def one(name, level_type):
        ds = open_cfgrib(path, shortName=name, typeOfLevel=level_type)
        ds = ds.swap_dims({"step": "valid_time"}) if "step" in ds.dims else ds
        return next(iter(cfgrib_vars(ds).values()))
    s = {name: one(name, "surface") for name in SURF}
    a = {name: one(name, "isobaricInhPa") for name in ATMOS}
    statics = {name: one(name, "surface") for name in STATIC}
    save_expected(d, *expected(s, a, statics, "valid_time"))


# --------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------

def case_bad(rng):
    d = os.path.join(OUT, "bad")
    os.makedirs(d)
    H, W = len(LAT), len(LON)
    t0, t1 = (20230101, 0), (20230101, 600)
    field = lambda kind="t": physical_values(rng, kind, (H, W))

    # a reduced Gaussian grid (HRES's native one): values only, at 4 bits
    h = eccodes.codes_grib_new_from_samples("reduced_gg_pl_32_grib2")
    eccodes.codes_set(h, "shortName", "2t")
    eccodes.codes_set(h, "bitsPerValue", 4)
    n = eccodes.codes_get(h, "numberOfValues")
    eccodes.codes_set_values(h, physical_values(rng, "t2m", (n,)).astype(np.float64))
    write(os.path.join(d, "reduced_gg.grib2"), [eccodes.codes_get_message(h)])
    eccodes.codes_release(h)

    good = [message("GRIB2", "2t", field("t2m"), t, bits=16) for t in (t0, t1)]
    whole = b"".join(good)
    write(os.path.join(d, "truncated.grib2"), [whole[: len(good[0]) + len(good[1]) // 2]])

    write(os.path.join(d, "missing_level.grib2"), [
        message("GRIB2", "t", field(), t0, 1000, "isobaricInhPa"), message("GRIB2", "t", field(), t0, 850, "isobaricInhPa"),
        message("GRIB2", "t", field(), t1, 1000, "isobaricInhPa")])
    write(os.path.join(d, "twice.grib2"), [good[0], good[1], good[1]])
    write(os.path.join(d, "model_levels.grib2"), [
        message("GRIB2", "t", field(), t, lev, "hybrid") for t in (t0, t1) for lev in (1, 2)])


def main():
    rng = np.random.default_rng(SEED)
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    case_hres(rng)
    case_forecast(rng)
    case_bad(rng)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {os.path.normpath(OUT)} ({total} bytes)")


if __name__ == "__main__":
    main()
