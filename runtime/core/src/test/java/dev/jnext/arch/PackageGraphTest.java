package dev.jnext.arch;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The library's package graph, checked on its compiled classes: no cycle between any two packages, and the layering
 * of {@code src/site/markdown/architecture.md} — the engine speaks only the backend port, the port knows only the
 * model, the model knows no backend, the CPU backend no GPU, nothing below the engine knows the engine.
 */
class PackageGraphTest {
    private static JavaClasses classes;

    @BeforeAll
    static void importMainClasses() {
        Path main = Path.of("target", "classes");
        assertTrue(Files.isDirectory(main.resolve("dev/jnext")), "the compiled main classes are at " + main.toAbsolutePath());
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPath(main);
        assertTrue(classes.size() > 100, "imported " + classes.size() + " classes");
    }

    @Test
    void noPackageCycles() {
        slices().matching("dev.jnext.(**)").should().beFreeOfCycles().check(classes);
    }

    @Test
    void theEngineSpeaksOnlyThePort() {
        rule("dev.jnext.engine..", "dev.jnext.cpu..", "dev.jnext.cuda..", "dev.jnext.gpu..").check(classes);
    }

    @Test
    void thePortKnowsOnlyTheModel() {
        rule("dev.jnext.backend..", "dev.jnext.engine..", "dev.jnext.cpu..", "dev.jnext.cuda..", "dev.jnext.gpu..",
                "dev.jnext.tokenizer..").check(classes);
    }

    @Test
    void theModelKnowsNoBackend() {
        rule("dev.jnext.model..", "dev.jnext.engine..", "dev.jnext.backend..", "dev.jnext.cpu..", "dev.jnext.cuda..",
                "dev.jnext.gpu..", "dev.jnext.tokenizer..").check(classes);
    }

    @Test
    void theCpuBackendKnowsNoGpuAndNoEngine() {
        rule("dev.jnext.cpu..", "dev.jnext.cuda..", "dev.jnext.gpu..", "dev.jnext.engine..").check(classes);
    }

    @Test
    void theCudaBackendKnowsNoEngine() {
        rule("dev.jnext.cuda..", "dev.jnext.engine..").check(classes);
    }

    @Test
    void theCudaBackendReadsPlainWeightsNotTheCpuBlocks() {
        // the weights come from dev.jnext.model.weights; what remains of cpu is cpu.ops (the delta rule's shape record
        // and the CPU references the kernel launchers still carry: the next step moves them to the tests)
        noClasses().that().resideInAPackage("dev.jnext.cuda..").should().dependOnClassesThat().resideInAPackage("dev.jnext.cpu")
                .because("the CUDA backend builds its image from the plain weight records of dev.jnext.model.weights")
                .check(classes);
    }

    @Test
    void theWeightsAreData() {
        rule("dev.jnext.model.weights..", "dev.jnext.cpu..").check(classes);
    }

    @Test
    void theGpuFacadeKnowsOnlyTheBindings() {
        rule("dev.jnext.gpu..", "dev.jnext.engine..", "dev.jnext.backend..", "dev.jnext.cpu..", "dev.jnext.cuda..",
                "dev.jnext.model..", "dev.jnext.tokenizer..").check(classes);
    }

    @Test
    void theTokenizerKnowsNoModelOrBackend() {
        rule("dev.jnext.tokenizer..", "dev.jnext.engine..", "dev.jnext.backend..", "dev.jnext.cpu..", "dev.jnext.cuda..",
                "dev.jnext.gpu..", "dev.jnext.model..").check(classes);
    }

    private static ArchRule rule(String from, String... forbidden) {
        return noClasses().that().resideInAPackage(from).should().dependOnClassesThat().resideInAnyPackage(forbidden)
                .because(from + " sits below " + String.join(", ", forbidden) + " in the layering");
    }
}
