/* lora.h - LoRA adapters for any linear layer of an aurora.h model (Aurora or
   Surya), interchangeable with Hugging Face PEFT. MIT licence.

   A LoRA adapter adds a low-rank update to a frozen linear layer:
       y = x W^T + b + scaling * (dropout(x) A^T) B^T,   A (r, in), B (out, r),
   scaling = alpha / r (alpha / sqrt(r) with rsLoRA). Only A and B train, so a
   1.3 B model fine-tunes with a few million parameters. PEFT's rules are
   kept exactly (huggingface/peft: src/peft/tuners/lora,
   src/peft/utils/save_and_load.py): which modules a target list matches, the
   names of the tensors, the adapter directory (adapter_config.json +
   adapter_model.safetensors), and what stays frozen.

   USAGE (include after aurora.h or surya.h; the implementation comes with
   AURORA_IMPLEMENTATION):

       aur_model *m = aur_surya_declare_model(&cfg);     (or aur_aurora_declare_model)
       aur_lora_config lc = aur_lora_defaults();          r 8, alpha 8
       aur_lora_add_target(&lc, "fc1"); aur_lora_add_target(&lc, "fc2");
       aur_lora_report rep;
       aur_lora_declare(m, &lc, &rep);                    adapters on every matching linear; rep lists
       aur_model_alloc(m, AUR_CPU); aur_surya_init_weights(m, 0);   what matched and what did not
       aur_load_safetensors(m, "surya.safetensors", AUR_LOAD_NONSTRICT, NULL);
       aur_lora_freeze_base(m, &lc);                      as PEFT: only adapters (and modules_to_save) train
       ... train ...
       aur_lora_save(m, &lc, "my-adapter");                  loads in Python with PeftModel.from_pretrained */
