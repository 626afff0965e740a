/* aurora-train - run a fine-tuning from a JSON run config.

   usage: aurora-train CONFIG.json [--resume [CHECKPOINT_DIR]]

   Everything about the run is in the config: README "Fine-tuning" lists
   every key of an Aurora run, "Fine-tuning Surya with aurora-train" those of
   a Surya run (the reference's downstream config.yaml keys; a string
   model.model_type tells the two apart). --resume continues from the output directory's latest
   checkpoint (or the one given) exactly where it stopped. Exit status 1 on
   any error, with the reason on stderr; an aborted run never writes or
   replaces a checkpoint. */
#define AURORA_IMPLEMENTATION
#include "../surya.h" /* a Surya config (the reference's downstream config.yaml keys) runs on the same loop */

static aur_trainer *create(const char *path)
{
    cJSON *j = aur_json_load(path);
    int surya = j && aur_surya_is_run_config(j);
    cJSON_Delete(j);
    if (!j) return NULL;
    return surya ? aur_surya_trainer_create(path) : aur_trainer_create(path);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4 || (argc >= 3 && strcmp(argv[2], "--resume"))) {
        fprintf(stderr, "usage: aurora-train CONFIG.json [--resume [CHECKPOINT_DIR]]\n");
        return 2;
    }
    aur_trainer *tr = create(argv[1]);
    int rc = tr ? 0 : 1;
    if (!rc && argc >= 3) rc = aur_trainer_resume(tr, argc == 4 ? argv[3] : NULL) ? 1 : 0;
    if (!rc && argc >= 3) printf("resumed at step %lld\n", (long long)aur_trainer_steps_done(tr));
    if (!rc) rc = aur_trainer_run(tr) ? 1 : 0;
    if (rc) fprintf(stderr, "aurora-train: %s\n", aur_last_error());
    aur_trainer_free(tr);
    return rc;
}
