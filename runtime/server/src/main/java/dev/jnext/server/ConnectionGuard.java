package dev.jnext.server;

import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.io.IdleTimeout;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * What Jetty's connector does not bound by itself: the time a client may take to send a request's line and headers
 * (Jetty only has an idle timeout, which a client that sends a byte now and then never meets), and whether the client
 * of a request that is being handled is still there.
 *
 * <p>It is a {@link Connection.Listener} of the connector (it sees every connection open and close) and a handler
 * in front of the application (it sees every request start and complete). A sweeper closes a connection that is
 * handling no request and whose request header has been arriving for longer than the header timeout: since it opened
 * (the first request), or since its first byte after the previous response (a keep-alive connection with nothing to
 * say is left to the idle timeout).
 */
final class ConnectionGuard extends Handler.Wrapper implements Connection.Listener {
    private static final Logger log = LoggerFactory.getLogger(ConnectionGuard.class);
    /** The request attribute holding the request's {@link Connection}. */
    static final String CONNECTION_ATTRIBUTE = ConnectionGuard.class.getName() + ".connection";

    private final long headerTimeoutNanos;
    private final Map<Connection, State> connections = new ConcurrentHashMap<>();
    private ScheduledExecutorService sweeper;

    ConnectionGuard(Duration headerTimeout) {
        this.headerTimeoutNanos = headerTimeout.toNanos();
    }

    private static final class State {
        final long opened = System.nanoTime();
        volatile boolean handling;
        volatile int requests;
        volatile long bytesAtLastResponse;
        volatile long headerSince; // when bytes of the next request were first seen; 0: none yet
    }

    // ---- connections ----

    @Override
    public void onOpened(Connection connection) {
        connections.put(connection, new State());
    }

    @Override
    public void onClosed(Connection connection) {
        connections.remove(connection);
    }

    /** Open connections (for tests and metrics). */
    int openConnections() {
        return connections.size();
    }

    // ---- requests ----

    @Override
    public boolean handle(Request request, Response response, Callback callback) throws Exception {
        Connection connection = request.getConnectionMetaData().getConnection();
        State state = connection == null ? null : connections.get(connection);
        if (state != null) {
            state.handling = true;
            request.setAttribute(CONNECTION_ATTRIBUTE, connection);
            Request.addCompletionListener(request, failure -> {
                state.bytesAtLastResponse = connection.getBytesIn();
                state.headerSince = 0;
                state.requests++;
                state.handling = false;
            });
        }
        return super.handle(request, response, callback);
    }

    // ---- the sweeper ----

    @Override
    protected void doStart() throws Exception {
        long period = Math.clamp(headerTimeoutNanos / 4, TimeUnit.MILLISECONDS.toNanos(20), TimeUnit.SECONDS.toNanos(1));
        sweeper = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("jnext-header-timeout").factory());
        sweeper.scheduleWithFixedDelay(this::sweep, period, period, TimeUnit.NANOSECONDS);
        super.doStart();
    }

    @Override
    protected void doStop() throws Exception {
        super.doStop();
        if (sweeper != null) sweeper.shutdownNow();
    }

    private void sweep() {
        try {
            long now = System.nanoTime();
            for (var e : connections.entrySet()) {
                State s = e.getValue();
                if (s.handling) continue;
                long since;
                if (s.requests == 0) {
                    since = s.opened;
                } else {
                    if (s.headerSince == 0) {
                        if (e.getKey().getBytesIn() > s.bytesAtLastResponse) s.headerSince = now;
                        continue;
                    }
                    since = s.headerSince;
                }
                if (now - since > headerTimeoutNanos && !s.handling) {
                    log.debug("closing {}: no complete request header within {} ms", e.getKey(), headerTimeoutNanos / 1_000_000);
                    e.getKey().close();
                }
            }
        } catch (RuntimeException ex) {
            log.warn("header timeout sweep failed: {}", ex.toString());
        }
    }

    // ---- is the client still there? ----

    /**
     * Whether the client of a request whose body has been read to its end has closed (or reset) the connection: a
     * non-blocking read of one byte sees the end of the stream or an error. Called while the request waits for its
     * answer, so that an abandoned non-streaming request is cancelled. A byte that does come (a pipelined next
     * request) is lost; the caller then closes the connection after its response, and stops probing. Also keeps the
     * connection from counting as idle while the request waits.
     *
     * @return {@link Probe#GONE}, {@link Probe#THERE} or {@link Probe#UNKNOWN} (data came, or no connection to probe)
     */
    static Probe probe(Object connectionAttribute) {
        if (!(connectionAttribute instanceof Connection connection)) return Probe.UNKNOWN;
        EndPoint endPoint = connection.getEndPoint();
        if (!endPoint.isOpen() || endPoint.isInputShutdown()) return Probe.GONE;
        try {
            ByteBuffer one = ByteBuffer.allocate(1).limit(0); // Jetty's buffers fill after their limit
            int n = endPoint.fill(one);
            if (n < 0) return Probe.GONE;
            if (endPoint instanceof IdleTimeout idle) idle.notIdle();
            return n == 0 ? Probe.THERE : Probe.UNKNOWN;
        } catch (IOException e) {
            return Probe.GONE;
        }
    }

    enum Probe { THERE, GONE, UNKNOWN }
}
