/**
 * jnext: Qwen3-Next inference from pure Java 25, on NVIDIA GPUs (CUDA driver API, CUDA graphs and cuBLASLt through
 * {@code java.lang.foreign}) or on the CPU reference backend.
 *
 * <p>The exported packages are the library's API: {@link dev.jnext.engine} (text generation: {@link
 * dev.jnext.engine.Engine}, {@link dev.jnext.engine.Generator}, sampling, end-of-sequence ids), {@link
 * dev.jnext.tokenizer} (the Qwen tokenizer and chat template), {@link dev.jnext.model} (loading a checkpoint, its
 * config, random checkpoints), {@link
 * dev.jnext.exec} (the CPU and CUDA runners), {@link dev.jnext.state} (sequence state), {@link dev.jnext.gpu} (the
 * CUDA facade and its exceptions) and {@link dev.jnext} ({@link dev.jnext.JnextException}). Everything else (the
 * model's blocks and operations, the kernel launchers, the CLI and its server) is internal.
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
    // the CLI's; the runnable jnext.jar bundles them, an application never needs them
    requires static info.picocli;
    requires static me.tongfei.progressbar;
    // the OpenAI-compatible server's (dev.jnext.server, jnext serve): optional dependencies as well
    requires static io.javalin;
    requires static org.eclipse.jetty.server;
    requires static org.eclipse.jetty.http;
    requires static org.eclipse.jetty.io;
    requires static org.eclipse.jetty.util;
    requires static jakarta.servlet;
    requires static io.prometheus.metrics.core;
    requires static io.prometheus.metrics.model;
    requires static io.prometheus.writer.text;
    requires static java.management;  // the server's heap metrics
    requires static java.net.http;    // bench serve --url

    exports dev.jnext;
    exports dev.jnext.engine;
    exports dev.jnext.exec;
    exports dev.jnext.gpu;
    exports dev.jnext.model;
    exports dev.jnext.state;
    exports dev.jnext.tokenizer;

    // picocli sets the commands' option fields, Jackson writes the benchmarks' JSON reports (when the CLI runs on the
    // module path, as in this module's tests; jnext.jar runs on the class path)
    opens dev.jnext.cli to info.picocli;
    opens dev.jnext.bench to com.fasterxml.jackson.databind;
}
