/**
 * jextract-generated FFM bindings for the CUDA driver API ({@code cuda.h}) and cuBLASLt ({@code cublasLt.h}); only
 * jnext's {@code dev.jnext.gpu} facade uses them. Everything but this file is generated (see bindings/README.md).
 * The generated classes call restricted methods (library lookup, downcall handles), so an application on the module
 * path grants this module native access as well: {@code --enable-native-access=dev.jnext,dev.jnext.bindings}.
 */
module dev.jnext.bindings {
    exports dev.jnext.bindings.cuda;
    exports dev.jnext.bindings.cublaslt;
}
