package dev.jnext.server;

import dev.jnext.JnextException;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;

/**
 * How the OpenAI-compatible server listens and behaves.
 *
 * @param host              address to bind; loopback by default, anything else needs an API key
 * @param port              TCP port; 0 picks a free one
 * @param apiKey            the bearer token clients must send (null: no check, loopback only); never blank, and no
 *                          whitespace at either end (clients could not send it: the header's token is trimmed)
 * @param maxRequestBytes   larger request bodies are refused with 400
 * @param defaultMaxTokens  chat completions without max_tokens stop after this many tokens (or the context)
 * @param drainTimeout      on shutdown, how long running requests may finish before they are ended with an error
 * @param keepAlive         a streaming response quiet for this long (e.g. queued) gets an SSE comment line
 * @param idleTimeout       a connection that neither sends nor receives for this long is closed (a non-streaming
 *                          request that is generating does not count as idle)
 * @param headerTimeout     a request's line and headers must be complete this long after the connection opened, or
 *                          after the first byte that followed the previous response; else the connection is closed
 * @param maxConnections    at most this many open connections; past it the server stops accepting until one closes
 */
public record ServerOptions(String host, int port, String apiKey, long maxRequestBytes, int defaultMaxTokens,
                            Duration drainTimeout, Duration keepAlive, Duration idleTimeout, Duration headerTimeout,
                            int maxConnections) {

    public static final String DEFAULT_HOST = "127.0.0.1";
    public static final int DEFAULT_PORT = 8000;
    public static final int DEFAULT_IDLE_TIMEOUT_SECONDS = 30;
    public static final int DEFAULT_HEADER_TIMEOUT_SECONDS = 10;
    public static final int DEFAULT_MAX_CONNECTIONS = 2048;

    public ServerOptions {
        if (host == null || host.isBlank()) throw new JnextException("--host must not be empty");
        if (port < 0 || port > 65535) throw new JnextException("--port must be in 0..65535, got " + port);
        if (apiKey != null) {
            if (apiKey.isBlank()) {
                throw new JnextException("--api-key (or JNEXT_API_KEY) must not be empty or blank: give a key, or none to serve loopback without one");
            }
            if (!apiKey.equals(apiKey.strip())) {
                throw new JnextException("--api-key (or JNEXT_API_KEY) must not start or end with whitespace: clients could never send it");
            }
            if (apiKey.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
                throw new JnextException("--api-key (or JNEXT_API_KEY) must not hold control characters: clients could never send it");
            }
        }
        if (maxRequestBytes < 1024) throw new JnextException("the request size limit must be at least 1024 bytes, got " + maxRequestBytes);
        if (defaultMaxTokens < 1) throw new JnextException("the default max tokens must be at least 1, got " + defaultMaxTokens);
        if (drainTimeout.isNegative()) throw new JnextException("the drain timeout must not be negative");
        if (keepAlive.isNegative() || keepAlive.isZero()) throw new JnextException("the keep-alive interval must be positive");
        if (idleTimeout.isNegative() || idleTimeout.isZero()) throw new JnextException("--idle-timeout must be positive");
        if (headerTimeout.isNegative() || headerTimeout.isZero()) throw new JnextException("--header-timeout must be positive");
        if (maxConnections < 1) throw new JnextException("--max-connections must be at least 1, got " + maxConnections);
    }

    /**
     * Loopback port 8000, no key, 4 MiB bodies, 8,192 default chat tokens, 30 s drain, 5 s keep-alive, 30 s idle
     * timeout, 10 s header timeout, 2,048 connections.
     */
    public static ServerOptions defaults() {
        return new ServerOptions(DEFAULT_HOST, DEFAULT_PORT, null, 4L << 20, 8192, Duration.ofSeconds(30), Duration.ofSeconds(5),
                Duration.ofSeconds(DEFAULT_IDLE_TIMEOUT_SECONDS), Duration.ofSeconds(DEFAULT_HEADER_TIMEOUT_SECONDS), DEFAULT_MAX_CONNECTIONS);
    }

    public ServerOptions withHost(String h) {
        return new ServerOptions(h, port, apiKey, maxRequestBytes, defaultMaxTokens, drainTimeout, keepAlive, idleTimeout, headerTimeout, maxConnections);
    }

    public ServerOptions withPort(int p) {
        return new ServerOptions(host, p, apiKey, maxRequestBytes, defaultMaxTokens, drainTimeout, keepAlive, idleTimeout, headerTimeout, maxConnections);
    }

    public ServerOptions withApiKey(String k) {
        return new ServerOptions(host, port, k, maxRequestBytes, defaultMaxTokens, drainTimeout, keepAlive, idleTimeout, headerTimeout, maxConnections);
    }

    public ServerOptions withMaxRequestBytes(long n) {
        return new ServerOptions(host, port, apiKey, n, defaultMaxTokens, drainTimeout, keepAlive, idleTimeout, headerTimeout, maxConnections);
    }

    public ServerOptions withDefaultMaxTokens(int n) {
        return new ServerOptions(host, port, apiKey, maxRequestBytes, n, drainTimeout, keepAlive, idleTimeout, headerTimeout, maxConnections);
    }

    public ServerOptions withDrainTimeout(Duration d) {
        return new ServerOptions(host, port, apiKey, maxRequestBytes, defaultMaxTokens, d, keepAlive, idleTimeout, headerTimeout, maxConnections);
    }

    public ServerOptions withKeepAlive(Duration d) {
        return new ServerOptions(host, port, apiKey, maxRequestBytes, defaultMaxTokens, drainTimeout, d, idleTimeout, headerTimeout, maxConnections);
    }

    public ServerOptions withIdleTimeout(Duration d) {
        return new ServerOptions(host, port, apiKey, maxRequestBytes, defaultMaxTokens, drainTimeout, keepAlive, d, headerTimeout, maxConnections);
    }

    public ServerOptions withHeaderTimeout(Duration d) {
        return new ServerOptions(host, port, apiKey, maxRequestBytes, defaultMaxTokens, drainTimeout, keepAlive, idleTimeout, d, maxConnections);
    }

    public ServerOptions withMaxConnections(int n) {
        return new ServerOptions(host, port, apiKey, maxRequestBytes, defaultMaxTokens, drainTimeout, keepAlive, idleTimeout, headerTimeout, n);
    }

    /** Refuses to serve beyond this machine without a key. */
    public void checkExposure() {
        InetAddress address;
        try {
            address = InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new JnextException("--host " + host + ": unknown host");
        }
        if (!address.isLoopbackAddress() && apiKey == null) {
            throw new JnextException("--host " + host + " is not a loopback address: serving beyond this machine needs "
                    + "--api-key KEY (or the JNEXT_API_KEY environment variable), which clients then send as a bearer token");
        }
    }
}
