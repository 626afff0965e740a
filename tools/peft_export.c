/* peft_export.c - writes an adapter with lora.h (the flare_class_token fixture model, adapters set to new values) to /tmp/our_adapter and prints the model output, for tools/peft_interop.py to compare with Python PEFT. Developers only:
       cc -O2 -fopenmp -I. tools/peft_export.c -o build/peft_export -lcjson -lm && build/peft_export > /tmp/our_out.txt && python3 tools/peft_interop.py */
#define AURORA_IMPLEMENTATION
#include "surya.h"
#include "lora.h"
int main(void){
  const char *dir="tests/fixtures/surya_heads/flare_class_token";
  cJSON *cfg=aur_json_load("tests/fixtures/surya_heads/flare_class_token/config.json");
  const cJSON *model=cJSON_GetObjectItem(cfg,"model");
  aur_surya_config c; aur_surya_preset("surya-1.0",&c);
  if(aur_surya_config_json(cJSON_GetObjectItem(model,"kwargs"),"HelioSpectformer1D","flare",&c)) {puts(aur_last_error());return 1;}
  aur_model *m=aur_surya_declare_model(&c);
  aur_lora_config lc=aur_lora_defaults(); aur_lora_config_json(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg,"lora"),"kwargs"),&lc,NULL);
  aur_lora_declare(m,&lc,NULL); aur_model_alloc(m,AUR_CPU);
  if(aur_lora_load_peft_state_dict(m,"tests/fixtures/surya_heads/flare_class_token/weights.safetensors",AUR_LOAD_STRICT,NULL)){puts(aur_last_error());return 1;}
  /* "training": new adapter values */
  for(int i=0;i<aur_model_count(m);i++){aur_tensor*p=aur_model_at(m,i); if(strstr(p->name,".lora_")) for(int64_t k=0;k<p->numel;k++) aur_tensor_f32(p)[k]=(aur_real)(0.05*sin(0.37*k+i));}
  if(aur_lora_save(m,&lc,"/tmp/our_adapter")){puts(aur_last_error());return 1;}
  aur_st_file *in=aur_st_open("tests/fixtures/surya_heads/flare_class_token/inputs.safetensors");
  aur_tape *t=aur_tape_create(); aur_tape_set_training(t,0);
  const aur_st_tensor *e=aur_st_find(in,"ts"); aur_tensor *ts=aur_tensor_new(t,AUR_CPU,aur_shapev(e->ndim,e->shape)); aur_st_read(in,e,AUR_F32,ts->data);
  aur_tensor *y=aur_surya_forward(m,t,ts);
  for(int64_t i=0;i<y->numel;i++) printf("%.9g\n", aur_tensor_f32(y)[i]);
  (void)dir; return 0; }
