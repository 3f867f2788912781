/**
 * jnext's CUDA kernels as PTX text ({@code dev/jnext/kernels/ptx/<name>.ptx}, compiled by nvcc at build time),
 * read through {@link dev.jnext.kernels.ptx.KernelSources}. A module of its own so that the PTX resources have an
 * owner on the module path; nothing here is API for applications.
 */
@SuppressWarnings("module")  // dev.jnext, the one reader, is built after this module
module dev.jnext.kernels.ptx {
    exports dev.jnext.kernels.ptx to dev.jnext;
}
