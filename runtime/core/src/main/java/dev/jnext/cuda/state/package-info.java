/**
 * Per-sequence state. CPU layouts (fp32): GDN conv state {@code [slots, convDim, K−1]} (column 0 the oldest raw
 * input), GDN recurrent state {@code [slots, Hv, dk, dv]} (S_h[i][j], i over key dims, j over value dims; a step
 * reads o = Sᵀq), attention KV {@code [tokens, kvHeads, headDim]} per slot with keys after k_norm and RoPE.
 */
package dev.jnext.cuda.state;
