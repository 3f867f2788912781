package dev.jnext.cpu;

import dev.jnext.model.ModelConfig;


import java.nio.file.Path;

/**
 * A loaded Qwen3-Next or Qwen3.5 / Qwen3.6 checkpoint (Hugging Face layout; the Qwen3.5 multimodal one's text model,
 * {@link ModelConfig#family()}): its {@link ModelConfig} and every weight, memory-mapped from
 * the safetensors files and bound to the model's blocks. Close it to unmap the files. The CPU backend
 * ({@link CpuBackend}, {@link CpuSession} for logits, {@link CpuForward} for several sequences at once) computes with
 * it; the CUDA runner reads its weights to build the device image.
 *
 * <pre>{@code
 * import dev.jnext.cpu.CpuSession;
 * import dev.jnext.cpu.Qwen3NextModel;
 *
 * try (Qwen3NextModel model = Qwen3NextModel.load(Path.of("Qwen3-Next-80B-A3B-Instruct"));
 *      CpuSession session = new CpuSession(model)) {
 *     float[] last = session.prefill(promptIds);   // logits of the last prompt token [vocab]
 *     float[] next = session.decode(tokenId);      // logits after one more token
 * }
 * }</pre>
 *
 * <p>Accepted: {@code model.safetensors} or a sharded index; tensors in F32/BF16/F16; experts in the hub layout
 * ({@code mlp.experts.{e}.gate_proj|up_proj|down_proj.weight}) or transformers' fused layout
 * ({@code mlp.experts.gate_up_proj} [E, 2I, H], {@code mlp.experts.down_proj} [E, H, I]); {@code mtp.*} and
 * {@code model.visual.*} left unread (one info line);
 * {@code lm_head.weight} may be absent when {@code tie_word_embeddings} is true. Any other tensor, or a missing or
 * misshaped one, fails the load with its name and shapes, after unmapping everything.
 *
 * <p>Only jnext implements this interface: the runners refuse any other implementation. The model is immutable and
 * may be shared by several runners and threads; closing it while one of them runs is an error of the caller.
 */
public interface Qwen3NextModel extends AutoCloseable {

    /**
     * Loads {@code dir/config.json} and maps the safetensors files of {@code dir}, checking every tensor's name and
     * shape against the config.
     *
     * @param dir a Hugging Face checkpoint folder (config.json and model.safetensors or
     *            model.safetensors.index.json with its shards)
     * @return the loaded model; the caller closes it
     * @throws dev.jnext.JnextException when a file is missing or malformed, or a tensor is missing, misshaped or
     *                                  unexpected (the message names the file or tensor)
     */
    static Qwen3NextModel load(Path dir) {
        return CpuModel.load(dir);
    }

    /** The checkpoint's {@code config.json}, checked. */
    ModelConfig config();

    /** Unmaps the safetensors files; the model and every runner over it must not be used afterwards. */
    @Override
    void close();
}
