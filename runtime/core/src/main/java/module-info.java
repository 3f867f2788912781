/**
 * jnext: Qwen3-Next inference from pure Java 25, on NVIDIA GPUs (CUDA driver API, CUDA graphs and cuBLASLt through
 * {@code java.lang.foreign}) or on the CPU reference backend.
 *
 * <p>The exported packages are the library's API: {@link dev.jnext.engine} (the {@link dev.jnext.engine.Engine},
 * requests, events and results, {@link dev.jnext.engine.EngineOptions}), {@link dev.jnext.backend} (the option types
 * the engine takes: {@link dev.jnext.backend.DeviceChoice}, {@link dev.jnext.backend.PrefillMode}, {@link
 * dev.jnext.backend.KvBudget}, {@link dev.jnext.backend.SamplingParams}, and the port the backends implement), {@link
 * dev.jnext.tokenizer} (the Qwen tokenizer and chat template), {@link dev.jnext.model} (a checkpoint's config,
 * random checkpoints) and {@link dev.jnext} ({@link dev.jnext.JnextException}, the supertype of every exception the
 * library throws for bad input or a failing device). Everything else — the CPU and CUDA backends, the kernel
 * launchers, the GPU facade — is internal: the CLI, the server and the benchmarks reach it on the class path.
 *
 * <p>An application on the module path grants native access to this module and to the bindings, or the JDK prints
 * a warning on the first GPU probe: {@code --enable-native-access=dev.jnext,dev.jnext.bindings}. jnext logs through
 * SLF4J only; the application brings the backend.
 */
module dev.jnext {
    requires dev.jnext.bindings;
    requires dev.jnext.kernels.ptx;
    requires com.fasterxml.jackson.databind;
    // jinjava has no module descriptor and no Automatic-Module-Name: its name comes from its file name
    requires jinjava;
    // jinjava's dependencies that are named modules: an automatic module requires nothing, so without these lines they
    // would not be resolved on the module path (its automatic dependencies, guava and the rest, are resolved with it)
    requires org.apache.commons.lang3;
    requires com.fasterxml.jackson.dataformat.yaml;
    requires com.fasterxml.jackson.datatype.jdk8;
    requires org.slf4j;
    // java.beans (FeatureDescriptor) in jinjava's expression-language resolvers, which the chat template extends
    requires java.desktop;

    // the backends, found by dev.jnext.backend.Backends so that the engine names neither (META-INF/services says the
    // same for the class path)
    uses dev.jnext.backend.BackendProvider;
    provides dev.jnext.backend.BackendProvider with dev.jnext.cpu.CpuBackendProvider, dev.jnext.cuda.CudaBackendProvider;

    exports dev.jnext;
    exports dev.jnext.engine;
    exports dev.jnext.backend;
    exports dev.jnext.model;
    exports dev.jnext.tokenizer;
}
