package dev.jnext.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.eclipse.jetty.http.HttpException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.util.Locale;

/**
 * Jetty's own error responses (a request it rejects before the application sees it: bad framing, a header too
 * large, an unknown expectation, an ambiguous path, ...) as OpenAI's error object instead of an HTML page, whatever
 * the client accepts. Set on the server and on the servlet context.
 */
final class JsonErrorHandler extends ErrorHandler {
    private static final Logger log = LoggerFactory.getLogger(JsonErrorHandler.class);
    private static final int MAX_MESSAGE = 200;
    private final ObjectMapper json = new ObjectMapper();

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        int status = response.getStatus();
        String message = (String) request.getAttribute(ERROR_MESSAGE);
        Throwable cause = (Throwable) request.getAttribute(ERROR_EXCEPTION);
        if (cause instanceof HttpException h) {
            status = h.getCode();
            if (message == null) message = h.getReason();
        }
        if (status < 400 || status > 599) status = 500;
        response.setStatus(status);
        if (message == null || message.isBlank()) message = HttpStatus.getMessage(status);
        if (message.length() > MAX_MESSAGE) message = message.substring(0, MAX_MESSAGE) + "...";
        // Jetty's messages name the problem ("Multiple Content-Lengths", "Illegal character CNTL=0x1"); never a trace
        log.debug("{} {}: {} {}", request.getMethod(), request.getHttpURI().getPath(), status, message);
        ApiError error = new ApiError(status, status >= 500 ? "server_error" : "invalid_request_error", null, code(status), message, null);
        if (HttpStatus.hasNoBody(status)) {
            callback.succeeded();
            return true;
        }
        byte[] body;
        try {
            body = json.writeValueAsBytes(error.toJson(json));
        } catch (JsonProcessingException impossible) {
            body = "{\"error\":{\"message\":\"error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}".getBytes();
        }
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
        response.write(true, ByteBuffer.wrap(body), callback);
        return true;
    }

    /** A code for OpenAI's {@code code} field: the status's reason phrase in snake case ("Request Timeout": request_timeout). */
    static String code(int status) {
        return switch (status) {
            case 404 -> "not_found";
            case 405 -> "method_not_allowed";
            default -> HttpStatus.getMessage(status).toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "_").replaceAll("^_|_$", "");
        };
    }
}
