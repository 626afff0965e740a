/* aurora-compare - several runs' curves on one figure.

   usage: aurora-compare -o OUT.png [--metric NAME[,NAME...]] RUN_DIR...

   Reads each run directory's metrics.jsonl (written by aurora-train) and draws
   one panel per metric with one line per run, labelled by the directory's
   name: the way to choose a learning rate from a sweep, or to set LoRA against
   full fine-tuning and the linear baseline. Without --metric: loss, val_loss
   and every validation metric the runs logged (val/tss, val/mae, ...). */
#define AURORA_IMPLEMENTATION
#include "../aurora.h"

#define MAX_METRICS 16

static int usage(void)
{
    fprintf(stderr, "usage: aurora-compare -o OUT.png [--metric NAME[,NAME...]] RUN_DIR...   (1 to 8 run directories)\n");
    return 2;
}

/* "loss,val/tss" -> {"loss", "val/tss"}, in place. */
static int split_metrics(char *list, const char **out)
{
    int n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        if (n < MAX_METRICS) out[n++] = tok;
        else return -1;
    return n;
}

int main(int argc, char **argv)
{
    const char *png = NULL, *metrics[MAX_METRICS], *runs[8];
    int n_metrics = 0, n_runs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) png = argv[++i];
        else if (!strcmp(argv[i], "--metric") && i + 1 < argc) {
            if ((n_metrics = split_metrics(argv[++i], metrics)) < 0) {
                fprintf(stderr, "aurora-compare: --metric: at most %d metrics\n", MAX_METRICS);
                return 2;
            }
        } else if (argv[i][0] == '-') return usage();
        else if (n_runs < 8) runs[n_runs++] = argv[i];
        else {
            fprintf(stderr, "aurora-compare: more than 8 run directories; one figure holds 8 lines a panel\n");
            return 2;
        }
    }
    if (!png || n_runs == 0) return usage();
    if (aur_plot_runs(png, runs, n_runs, metrics, n_metrics)) {
        fprintf(stderr, "aurora-compare: %s\n", aur_last_error());
        return 1;
    }
    printf("wrote %s (%d runs)\n", png, n_runs);
    return 0;
}
