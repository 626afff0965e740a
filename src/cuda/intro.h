/* kernels.cuh - the CUDA kernels of aurora.h.

   Included by the implementation (aurora.h) when it is compiled by nvcc
   with -DAURORA_CUDA; never include it yourself. Each op has a section:
   __device__ helpers, __global__ aur_k_<op>_* kernels, and host launchers
   aur_cuda_<op>_* that check the launch and return an AUR_E* code.

   Matrix products go through cuBLAS with F32 compute and TF32 off (the
   library's fidelity bar is 1e-5; define AUR_ALLOW_TF32 to allow it), or
   under autocast with BF16 operands and F32 accumulation. Every reduction
   has a fixed shape (a thread's own order, fixed trees, fixed chunks added
   in order), never atomics: results do not change from run to run.
   Element rules shared with the CPU (dropout's hash, the losses, Adam's
   update, ...) are the CPU's own AUR__HD functions in aurora.h.

   Launches go through AUR__LAUNCH so that tests/cuda_emu.h can compile all
   of this with g++ and run it on a CPU (make test does). */
