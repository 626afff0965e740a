"""make_sdo_fixtures.py - SDO files in the reference's layout, and what its dataset reads from them.

Surya's data loaders (surya/datasets/helio.py: HelioNetCDFDataset and
downstream_examples/solar_flare_forcasting/dataset.py: SolarFlareDataset)
read an index CSV (",path,timestep,present") of NetCDF files, one per time
(a 2-D variable per channel, opened with xarray's h5netcdf engine), scale
each channel with the StandardScaler entries of a scalers YAML file, and
join a flare label CSV. This writes a small such set with the reference's
own stack (xarray + h5netcdf, compressed with gzip and with hdf5plugin's
filters as the real files are) and records the samples the reference's
classes return, so tests/test_sdo.c can check the C reader against them.

    PYTHONPATH=/path/to/Surya:/path/to/Surya/downstream_examples python3 tools/make_sdo_fixtures.py

Needs torch, numpy, pandas, xarray, h5netcdf, hdf5plugin, scikit-image,
numba, pyyaml and safetensors. Writes tests/fixtures/sdo/.
"""
import json
import os
import shutil
import sys
import types

import hdf5plugin
import numpy as np
import pandas as pd
import xarray as xr
import yaml
from safetensors.numpy import save_file

sys.modules.setdefault("wandb", types.ModuleType("wandb"))  # imported, unused, by surya/utils/log.py
sys.modules["wandb"].__version__ = "0.20.0"

from solar_flare_forcasting.dataset import SolarFlareDataset
from surya.datasets.helio import HelioNetCDFDataset
from surya.datasets.transformations import StandardScaler
from surya.utils.data import build_scalers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "sdo")
H, W = 10, 13  # not square, not a multiple of the pooling: rows and columns cannot be swapped unseen
CHANNELS = ["aia94", "aia171", "hmi_m", "aia1600"]
START = pd.Timestamp("2014-01-07 15:00:00")
# one file per hour; 19:00 is listed as absent (present 0), 21:00 and 01:00 are not listed at all
HOURS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13]
ABSENT = 4


def compressions():
    """The encodings the files cycle through: HDF5's own and the plugin filters Debian ships."""
    return [
        {"zlib": True, "complevel": 4, "shuffle": True},
        dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)),
        dict(hdf5plugin.BZip2(blocksize=5)),
        dict(hdf5plugin.LZ4()),
        {"zlib": True, "complevel": 1, "shuffle": False},
    ]


def channel_values(rng, name, k):
    """Solar-like magnitudes: AIA counts (positive, heavy-tailed), HMI field in gauss (signed)."""
    if name.startswith("hmi"):
        return rng.normal(0, 300, (H, W)) + 10 * k
    return np.exp(rng.normal(3, 1.5, (H, W))) + k


def write_file(path, rng, k, encoding):
    """One time's channels. aia94 is float32; hmi_m float64; aia1600 int16 packed
    (scale_factor, add_offset, _FillValue: xarray decodes it to float32); aia335 int32
    packed the same way (decoded to float64); aia171 float32 with a _FillValue no pixel
    holds. An extra variable the channels do not name."""
    data = {}
    for name in CHANNELS + ["aia335", "aia4500"]:
        v = channel_values(rng, name, k)
        data[name] = (("y", "x"), v.astype(np.float64 if name == "hmi_m" else np.float32))
    ds = xr.Dataset(data, attrs={"T_OBS": str(START + pd.Timedelta(hours=k))})
    enc = {name: dict(encoding) for name in data}
    enc["aia171"]["_FillValue"] = np.float32(-9999.0)
    enc["aia1600"].update(dtype="int16", scale_factor=np.float32(0.25), add_offset=np.float32(100.0), _FillValue=np.int16(-32768))
    enc["aia335"].update(dtype="int32", scale_factor=np.float32(0.001), add_offset=np.float32(3.0), _FillValue=np.int32(-2147483647))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf", encoding=enc)


def write_data():
    rng = np.random.default_rng(20140107)
    rows, comp = [], compressions()
    for i, k in enumerate(HOURS):
        t = START + pd.Timedelta(hours=k)
        rel = f"{t:%Y}/{t:%m}/{t:%Y%m%d_%H%M}.nc"
        write_file(os.path.join(OUT, "data", rel), rng, k, comp[i % len(comp)])
        rows.append({"path": rel, "timestep": str(t), "present": 0 if k == ABSENT else 1})
    index = pd.DataFrame(rows).sample(frac=1, random_state=3)  # the reader sorts by time
    index.to_csv(os.path.join(OUT, "index.csv"))
    # flare labels: every hour but 23:00, label_max 1 from 17:00 on. The reference
    # checks a sample's times against the index before it joins the labels, and then
    # loads files from the joined index: an unlabelled time that a valid sample
    # needs as an input makes its __getitem__ skip to the next sample. 23:00 is needed
    # only by the sample at 23:00 itself, which its missing label removes.
    times = [START + pd.Timedelta(hours=k) for k in range(15) if k != 8]
    flare = pd.DataFrame({"timestamp": [str(t) for t in times], "max_goes_class": ["B8.3"] * len(times),
                          "cumulative_index": np.zeros(len(times)),
                          "label_max": [int(t >= START + pd.Timedelta(hours=2)) for t in times],
                          "label_cum": [0] * len(times)})
    flare.to_csv(os.path.join(OUT, "flare.csv"), index=False)
    # a file whose filter (Zstd, id 32015) Debian has no plugin for: the reader must say which
    write_file(os.path.join(OUT, "zstd.nc"), rng, 0, dict(hdf5plugin.Zstd(clevel=3)))


def write_scalers():
    """The scalers file as the reference writes it: StandardScaler.to_dict, values as strings."""
    info, rng = {}, np.random.default_rng(5)
    for name in CHANNELS + ["aia335", "aia4500"]:
        s = StandardScaler(epsilon=1e-8)
        s._mean, s._std = np.float32(rng.uniform(1, 4)), np.float32(rng.uniform(0.5, 2))
        s._min, s._max, s._is_fitted = np.float32(0), np.float32(1e4), True
        s._sl_scale_factor = np.float32(1.0 / (10 ** rng.integers(0, 3)))
        info[name] = s.to_dict()
    with open(os.path.join(OUT, "scalers.yaml"), "w") as f:
        yaml.safe_dump(info, f)
    return info


def record(name, ds, settings):
    """Every sample of a dataset: its tensors, its times (minutes after START) and, for flares, its label."""
    tensors = {}
    for i in range(len(ds)):
        data, meta = ds._get_index_data(i)
        for key in ("ts", "forecast", "time_delta_input", "lead_time_delta"):
            tensors[f"{i}.{key}"] = np.ascontiguousarray(data[key], dtype=np.float32)
        times = np.concatenate([meta["timestamps_input"], meta["timestamps_targets"]]).astype("datetime64[ns]")
        tensors[f"{i}.minutes"] = ((times - np.datetime64(START)) // np.timedelta64(1, "m")).astype(np.int32)
        if "label" in data:
            tensors[f"{i}.label"] = np.array([data["label"]], dtype=np.float32)
    save_file(tensors, os.path.join(OUT, f"{name}.safetensors"))
    settings["samples"], settings["start"] = len(ds), str(START)
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(settings, f, indent=1)
    print(f"{name}: {len(ds)} samples")


class Quiet:
    def info(self, *a):
        pass

    warning = info


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    write_data()
    scalers = build_scalers(write_scalers())
    cases = {
        # the flare config's times: inputs an hour apart, the label's time an hour on
        "flare": dict(flare=True, time_delta_input_minutes=[-60, 0], time_delta_target_minutes=60, rollout_steps=0, pooling=1),
        # two rollout targets, the input times unsorted, pooling with padding (10 x 13 into blocks of 3)
        "rollout_pool3": dict(flare=False, time_delta_input_minutes=[0, -60], time_delta_target_minutes=60, rollout_steps=1, pooling=3),
        # three inputs
        "pool2": dict(flare=False, time_delta_input_minutes=[-120, -60, 0], time_delta_target_minutes=60, rollout_steps=0, pooling=2),
        # without the float64 channel numpy works in float32 throughout (decoding the int16 one, pooling, scaling)
        "float32": dict(flare=True, time_delta_input_minutes=[-60, 0], time_delta_target_minutes=60, rollout_steps=0, pooling=1,
                        channels=["aia94", "aia171", "aia1600"]),
        # one block per image (13 wide, padded to 13): numpy sums each block as one run; int32 packed decodes to float64
        "pool13": dict(flare=False, time_delta_input_minutes=[0], time_delta_target_minutes=60, rollout_steps=0, pooling=13,
                       channels=["aia335", "aia94"]),
        "float32_pool3": dict(flare=False, time_delta_input_minutes=[-60, 0], time_delta_target_minutes=60, rollout_steps=0, pooling=3,
                              channels=["aia1600", "aia94"]),
    }
    for name, c in cases.items():
        kw = dict(sdo_data_root_path=os.path.join(OUT, "data"), index_path=os.path.join(OUT, "index.csv"),
                  time_delta_input_minutes=c["time_delta_input_minutes"], time_delta_target_minutes=c["time_delta_target_minutes"],
                  n_input_timestamps=len(c["time_delta_input_minutes"]), rollout_steps=c["rollout_steps"], scalers=scalers,
                  channels=c.setdefault("channels", CHANNELS), phase="valid", pooling=c["pooling"])
        ds = SolarFlareDataset(flare_index_path=os.path.join(OUT, "flare.csv"), **kw) if c["flare"] else HelioNetCDFDataset(**kw)
        ds.logger = Quiet()
        record(name, ds, c)


if __name__ == "__main__":
    main()
