/* surya.h - NASA-IMPACT's Surya (HelioSpectFormer) and its fine-tuning heads,
   on aurora.h's core. MIT licence.

   Surya forecasts the Sun: 13 channels of SDO images (AIA EUV and HMI
   magnetograms) at a few input times go in, the channels one lead time later
   come out. Its backbone is a ViT over 16x16 patches: spectral-gating blocks
   (a learned filter in the 2-D Fourier domain of the token grid) followed by
   long-short attention blocks (each token attends to its neighbourhood
   window, to a few learned summaries of the whole image, and to global
   tokens). The downstream heads reuse the backbone for scalar targets (flare
   classification, solar-wind speed, EUV spectra: HelioSpectformer1D) and
   for images (active-region masks: HelioSpectformer2D).

   USAGE: as aurora.h (#define AURORA_IMPLEMENTATION in one file, then
   #include "surya.h"; it includes aurora.h). Parameter names are the
   reference's state_dict keys. To read SDO data in the reference's layout
   (NetCDF files through an index CSV, scalers.yaml: aur_sdo_open), compile
   that file with -DAUR_NETCDF and link -lnetcdf -lyaml; without it those
   calls return AUR_EUNSUPPORTED.

       aur_surya_config cfg;
       aur_surya_preset("surya-1.0", &cfg);
       aur_model *m = aur_surya_create(&cfg, AUR_CPU, 0);     (or declare, add LoRA (lora.h), allocate)
       aur_tensor *y = aur_surya_forward(m, tape, ts);         ts (B, C, T, H, W), normalised

   The 2-D FFT of the spectral filter is a DFT written as four real matrix
   products per axis (cos/sin tables computed once in double precision): it
   reuses the tuned GEMM and its autograd on the CPU and cuBLAS on the GPU,
   costs O(G) per token where G is the grid side (256 for Surya-1.0: a small
   fraction of the attention blocks' work), and needs no FFT library. */
