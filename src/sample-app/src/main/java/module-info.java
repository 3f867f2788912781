/** A chat command line over jnext: the library is one named module, {@code dev.jnext}. */
module com.example.jnextsample {
    requires dev.jnext;
}
