/**
 * The operations of Qwen3-Next as semantic units, each a record that carries its geometry (and, where it has
 * them, its weights) plus a plain-Java CPU reference implementation with explicit fp32 inputs and outputs:
 * {@link dev.jnext.cpu.ops.Linear}, {@link dev.jnext.cpu.ops.RmsNorm}, {@link dev.jnext.model.GdnProjections},
 * {@link dev.jnext.cpu.ops.CausalConv1d}, {@link dev.jnext.cpu.ops.GdnGating}, {@link dev.jnext.cpu.ops.GatedDeltaRule}
 * (recurrent and chunked), {@link dev.jnext.cpu.ops.GatedRmsNorm}, {@link dev.jnext.cpu.ops.RotaryEmbedding},
 * {@link dev.jnext.cpu.ops.AttentionCore}, {@link dev.jnext.cpu.ops.SparseMoe}, {@link dev.jnext.cpu.ops.SwiGluMlp}.
 *
 * <p>Conventions shared with the CUDA kernels, which implement the same records against device buffers and are
 * tested against these references: activations are row-major {@code [tokens, width]} fp32 arrays, with the
 * per-head layouts spelled out on each op; weights are {@link dev.jnext.model.weights.Matrix} views in their stored dtype
 * ({@code [out, in]}, y = x·Wᵀ) converted to fp32 as they are read; accumulation is fp32; sequence-mixing ops
 * take one sequence's row range plus its state offset, so a batch is a list of
 * {@link dev.jnext.cpu.SequenceSpan}s over one flattened activation.
 */
package dev.jnext.cpu.ops;
