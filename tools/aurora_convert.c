/* aurora-convert - weather files to the safetensors series format.

   usage: aurora-convert IN... -o OUT.safetensors [--rename FILE_NAME=AURORA_NAME,...]

   IN: NetCDF files (ERA5, HRES or CAMS as the Copernicus stores deliver
   them; surface, atmospheric and static files, or consecutive days) and
   local Zarr v2 stores (WeatherBench2), and GRIB 1/2 files (HRES, MARS
   retrievals; through ecCodes), read together as one series by
   aur_weather_load: Aurora's names, latitudes decreasing, longitudes in
   [0, 360), levels in hPa, every time step in time order. OUT is what
   aur_batch_load and the trainer's data.train read (B = 1, T steps,
   metadata step_seconds). Prints how the files were mapped; a bad file
   gives one line naming it and the problem, and exit status 1. */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

static int usage(void)
{
    fprintf(stderr, "usage: aurora-convert IN... -o OUT.safetensors [--rename FILE_NAME=AURORA_NAME,...]\n"
                    "  IN: NetCDF or GRIB files and Zarr v2 stores, read together as one series\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *renames = NULL, *in[256];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--rename")) {
            if (i + 1 >= argc) return usage();
            *(argv[i][1] == 'o' ? &out : &renames) = argv[i + 1];
            i++;
        } else if (argv[i][0] == '-' || n == 256) {
            return usage();
        } else {
            in[n++] = argv[i];
        }
    }
    if (!n || !out) return usage();
    aur_batch *b = aur_weather_load(in, n, renames, stdout);
    int rc = b ? aur_batch_save(b, out) : 1;
    if (rc) fprintf(stderr, "aurora-convert: %s\n", aur_last_error());
    else printf("wrote %s: %d steps of %d surface, %d atmospheric and %d static variables\n", out, b->T, b->surf_names.n, b->atmos_names.n,
                b->static_names.n);
    aur_batch_free(b);
    return rc ? 1 : 0;
}
