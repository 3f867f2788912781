package dev.jnext.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.tag.ForTag;
import com.hubspot.jinjava.tree.TagNode;

import java.util.AbstractList;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Jinja's {@code loop.previtem} and {@code loop.nextitem}, which jinjava's ForLoop lacks: a {@code for} tag that
 * iterates a list remembering the current position, and the lookup {@link PythonMethods} answers from it for
 * the innermost running loop. Every iteration is charged to the render's {@link RenderBudget}, so nested loops
 * over long ranges end at the budget instead of running for hours.
 */
final class LoopNeighbours {
    private static final ThreadLocal<Deque<Items>> RUNNING = ThreadLocal.withInitial(ArrayDeque::new);
    /** Marks "no neighbour": Jinja leaves previtem undefined on the first item and nextitem on the last. */
    static final Object NONE = null;

    private LoopNeighbours() {}

    /** The item before the current one of the innermost running loop, or null. */
    static Object previous() {
        Items items = RUNNING.get().peek();
        return items == null || items.current <= 0 ? NONE : items.get(items.current - 1);
    }

    /** The item after the current one of the innermost running loop, or null. */
    static Object next() {
        Items items = RUNNING.get().peek();
        return items == null || items.current < 0 || items.current + 1 >= items.size() ? NONE : items.get(items.current + 1);
    }

    /** The loop items with the index of the one being rendered. */
    private static final class Items extends AbstractList<Object> {
        private final List<Object> items;
        private int current = -1;

        Items(Collection<?> c) {
            items = new ArrayList<>(c);
        }

        @Override
        public Object get(int index) {
            return items.get(index);
        }

        @Override
        public int size() {
            return items.size();
        }

        @Override
        public Iterator<Object> iterator() {
            current = -1;
            return new Iterator<>() {
                @Override
                public boolean hasNext() {
                    return current + 1 < items.size();
                }

                @Override
                public Object next() {
                    RenderBudget.step();
                    return items.get(++current);
                }
            };
        }
    }

    /** jinjava's {@code for}, iterating lists through {@link Items}. */
    static final class TrackingForTag extends ForTag {
        private static final long serialVersionUID = 1L;

        @Override
        public String renderForCollection(TagNode tagNode, JinjavaInterpreter interpreter, List<String> loopVars, Object collection) {
            Collection<?> c = switch (collection) {
                case Map<?, ?> m -> m.keySet(); // jinja2 iterates a dict's keys (iterateOverMapKeys is on)
                case Collection<?> all -> all;
                case Object[] array -> Arrays.asList(array);
                case null, default -> null;
            };
            if (c == null) return super.renderForCollection(tagNode, interpreter, loopVars, collection);
            Items items = new Items(c);
            RUNNING.get().push(items);
            try {
                return super.renderForCollection(tagNode, interpreter, loopVars, items);
            } finally {
                RUNNING.get().pop();
            }
        }
    }
}
