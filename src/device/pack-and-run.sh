#!/usr/bin/env bash
# Pack on the development machine, run on the GPU host.
#
#   src/device/pack-and-run.sh pack
#       Builds the reactor (tests skipped), jlinks a Temurin 25 runtime, and packs into .pack/ (ignored, < 60 MiB):
#       jre.txz, jnext.jar (runnable, all dependencies), jnext-tests.jar (the library's test classes without the CI-only fuzz corpora and fixtures), jnext-cli-tests.jar, jnext-jmh.jar,
#       lib/ (JUnit console launcher, JMH and its dependencies).
#
#   src/device/pack-and-run.sh run [--parity] [--tests] [--sweep SEED|random] [--test-select ARGS] [--bench] [--bench-suites "S1 S2"] [--jmh REGEX]
#                                  [--jmh-args ARGS] [--models "8l 48l"] [--cli "ARGS"]... [--serve-bench "MODES"] [--soak D]
#                                  [--anchors SECTIONS] [--launch-anchor]
#       On the GPU host (no Java there): unpacks the runtime under /tmp and runs, in this order,
#       the parity references (--parity), the gpu-tagged JUnit tests, `jnext bench kernels` (--bench) and other suites, JMH benchmarks matching REGEX, a jnext CLI command,
#       the geometry sweep (--sweep), the serve benchmarks, peer anchors (python3 .anchors/anchor.py SECTION for each of e.g. "ceil fla"; needs .anchors/ carried) and
#       the C launch-cost anchor (src/reference/launch_anchor.cu, built there with nvcc).
#       --models writes synthetic 80B-geometry checkpoints (/tmp/jnext-parity/ckpt-next80b-<8l|48l>-64e) before the --cli
#       commands (each --cli runs in turn; repeatable).
#       --serve-bench "MODES" runs `jnext bench serve` (200 chat requests, 256 new tokens, concurrency 32) on the synthetic
#       8-layer 80B-geometry checkpoint on CUDA once per prefill graph mode (completions: see below); --soak DURATION adds a soak run of that length.
#       --parity first writes the CUDA forward-pass parity cases (jnext synth checkpoints + transformers logits from
#       src/reference/cuda_parity.py) under /tmp/jnext-parity and exports JNEXT_PARITY_DIR for CudaForwardParityGpuTest.
#       Results go to $OUT (junit reports, bench.json, jmh.json, anchors_*.json); a short summary is printed last.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pack="$root/.pack"

do_pack() {
  set -e
  export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
  cd "$root"
  mvn -B -ntp -q package -DskipTests
  mkdir -p "$pack/lib"
  # the runtime travels uncompressed inside (no jlink --compress) and xz-compressed outside: ~15 MB instead of ~28 MB
  # for a zip-9 jlink in a .tgz, which keeps the pack, the working tree and the anchors under the 64 MiB a call carries
  rm -f "$pack/jre.tgz"
  if [ ! -f "$pack/jre.txz" ]; then
    rm -rf "$pack/jre"
    "$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,java.management,jdk.management,jdk.unsupported,java.xml,java.sql,jdk.zipfs,java.net.http,java.naming \
      --strip-debug --no-header-files --no-man-pages --output "$pack/jre"
    tar -C "$pack" -cf - jre | xz -T0 -9 > "$pack/jre.txz"
    rm -rf "$pack/jre"
  fi
  cp runtime/cli/target/jnext.jar "$pack/jnext.jar"
  python3 src/device/strip-test-jar.py runtime/core/target/jnext-runtime-*-tests.jar "$pack/jnext-tests.jar"
  cp runtime/cli/target/jnext-cli-*-tests.jar "$pack/jnext-cli-tests.jar"
  cp jmh/benchmarks/target/jnext-jmh-*.jar "$pack/jnext-jmh.jar"
  cp jmh/suites/target/jnext-bench-*-tests.jar "$pack/jnext-bench-tests.jar"
  # JMH's jars travel only when asked for (JNEXT_PACK_JMH=1): the pack must stay under the 64 MiB a device call carries
  local libs="org.junit.platform:junit-platform-console-standalone:1.14.1"
  [ "${JNEXT_PACK_JMH:-0}" = 1 ] && libs="$libs org.openjdk.jmh:jmh-core:1.37 net.sf.jopt-simple:jopt-simple:5.0.4 org.apache.commons:commons-math3:3.6.1"
  [ "${JNEXT_PACK_JMH:-0}" = 1 ] || rm -f "$pack"/lib/jmh-core-*.jar "$pack"/lib/jopt-simple-*.jar "$pack"/lib/commons-math3-*.jar
  for a in $libs; do
    [ -n "$(ls "$pack/lib/$(echo "$a" | cut -d: -f2)"-*.jar 2>/dev/null)" ] || \
      mvn -B -ntp -q -N dependency:copy -Dartifact="$a" -DoutputDirectory="$pack/lib"
  done
  # the Qwen3 test tokenizer (fetched by the build into .cache/) travels compressed: 11 MB of JSON -> ~2 MB
  if [ -f .cache/tokenizer-qwen3/tokenizer.json ]; then tar -C .cache -czf "$pack/tokenizer-qwen3.tgz" tokenizer-qwen3; fi
  du -sh "$pack"; ls -la "$pack" "$pack/lib"
}

do_run() {
  local tests=0 sweep="" select="" bench=0 suites="" jmh="" jmhargs="" anchors="" launch_anchor=0 parity=0 serve="" soak="" models=""
  local -a clis=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --tests) tests=1 ;;
      --sweep) sweep="${2:-random}"; shift ;;
      --parity) parity=1 ;;
      --serve-bench) serve="$2"; shift ;;
      --soak) soak="$2"; shift ;;
      --test-select) select="$2"; shift ;;
      --bench) bench=1 ;;
      --bench-suites) suites="$2"; shift ;;
      --jmh) jmh="$2"; shift ;;
      --jmh-args) jmhargs="$2"; shift ;;
      --cli) clis+=("$2"); shift ;;
      --models) models="$2"; shift ;;
      --anchors) anchors="$2"; shift ;;
      --launch-anchor) launch_anchor=1 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
  done
  OUT=${OUT:-/tmp/jnext-out}; mkdir -p "$OUT"
  [ -f "$pack/jre.txz" ] || { echo "no $pack/jre.txz: run 'pack' on the development machine and carry .pack" >&2; exit 2; }
  if [ -f "$pack/tokenizer-qwen3.tgz" ] && [ ! -f "$root/.cache/tokenizer-qwen3/tokenizer.json" ]; then
    mkdir -p "$root/.cache" && tar -C "$root/.cache" -xzf "$pack/tokenizer-qwen3.tgz"
  fi
  local jre=/tmp/jnext-jre
  rm -rf "$jre" && mkdir -p "$jre" && { tar -C "$jre" -xJf "$pack/jre.txz" 2>/dev/null ||
    python3 -c 'import lzma,sys,tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' "$pack/jre.txz" "$jre"; }
  local java="$jre/jre/bin/java -XX:+UseParallelGC --enable-native-access=ALL-UNNAMED"
  local summary="$OUT/summary.txt"; : > "$summary"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader | sed 's/^/card: /' | tee -a "$summary"
  local rc=0

  export JNEXT_RESULTS_DIR="$OUT"
  if [ $parity = 1 ]; then
    local pdir=/tmp/jnext-parity scale=5
    rm -rf "$pdir" && mkdir -p "$pdir"
    local synth="$java -jar $pack/jnext.jar synth"
    { $synth --preset gpu-small --vocab-size 8192 --mlp-only-layers 1 --no-norm-topk-prob --logit-scale $scale --out "$pdir/ckpt-small-hub-v5" &&
      $synth --preset gpu-small --layers 8 --vocab-size 8190 --experts-layout fused --config-style 4 --tie-word-embeddings --logit-scale 0.22 \
        --out "$pdir/ckpt-small-fused-v4-tied" &&
      $synth --preset next-80b-a3b --layers 8 --experts 64 --logit-scale $scale --out "$pdir/ckpt-next80b-8l-64e" &&
      # Qwen3.5 / 3.6 (issue 22): value-head ratios 1 (0.8B, the full 248,320-token vocabulary, tied), 3 (27B: 24 query
      # heads, hidden 5120) and the 35B-A3B MoE (16 of its 256 experts, top-8 of them), split projections
      $synth --preset qwen3.5-0.8b --layers 4 --logit-scale $scale --out "$pdir/ckpt-q35-08b-4l" &&
      $synth --preset qwen3.5-27b --layers 4 --vocab-size 8192 --logit-scale $scale --out "$pdir/ckpt-q35-27b-4l" &&
      $synth --preset qwen3.5-35b-a3b --layers 4 --experts 16 --vocab-size 8192 --logit-scale $scale \
        --out "$pdir/ckpt-q35-35b-a3b-4l-16e" &&
      # issue 21: the 8-layer 80B geometry in the official FP8 layout (truth: fp32 on its dequantized weights)
      $synth --preset next-80b-a3b --layers 8 --experts 64 --dtype fp8 --logit-scale $scale --out "$pdir/ckpt-next80b-8l-64e-fp8"; } \
      > "$OUT/parity-synth.log" 2>&1 || rc=1
    PYTHONUNBUFFERED=1 python3 "$root/src/reference/cuda_parity.py" --out "$pdir" small-hub-v5="$pdir/ckpt-small-hub-v5" \
      small-fused-v4-tied="$pdir/ckpt-small-fused-v4-tied" next80b-8l-64e="$pdir/ckpt-next80b-8l-64e" \
      q35-08b-4l="$pdir/ckpt-q35-08b-4l" q35-27b-4l="$pdir/ckpt-q35-27b-4l" q35-35b-a3b-4l-16e="$pdir/ckpt-q35-35b-a3b-4l-16e" \
      next80b-8l-64e-fp8="$pdir/ckpt-next80b-8l-64e-fp8" > "$OUT/parity-ref.log" 2>&1 || rc=1
    echo "--- parity references:" | tee -a "$summary"; grep -E "cuda_parity" "$OUT/parity-ref.log" | tail -14 | tee -a "$summary"
    export JNEXT_PARITY_DIR="$pdir"
  fi
  if [ $tests = 1 ]; then
    local sel=${select:-"--scan-class-path $pack/jnext-tests.jar:$pack/jnext-cli-tests.jar:$pack/jnext-bench-tests.jar --include-tag gpu"}
    # shellcheck disable=SC2086
    $java -Djnext.testTokenizerDir="$root/.cache/tokenizer-qwen3" -jar "$pack"/lib/junit-platform-console-standalone-*.jar execute \
      --class-path "$pack/jnext.jar:$pack/jnext-tests.jar:$pack/jnext-cli-tests.jar:$pack/jnext-bench-tests.jar" $sel \
      --fail-if-no-tests --details=tree --disable-banner --disable-ansi-colors --reports-dir "$OUT/junit" > "$OUT/gpu-tests.log" 2>&1
    local trc=$?
    grep -E "✘|MethodSource|=>|Exception|expected" "$OUT/gpu-tests.log" | head -60
    echo "--- gpu tests (exit $trc):" | tee -a "$summary"
    grep -E "tests (successful|failed|aborted|skipped|found)|containers failed" "$OUT/gpu-tests.log" | tee -a "$summary"
    [ $trc = 0 ] || rc=1
  fi
  # JNEXT_SKIP_AFTER_S: later stages (bench suites, JMH, CLI commands, serve, anchors) are skipped once the run has taken
  # this many seconds, so a call ends inside the host's 10-minute limit with its summary and logs
  local skip_after=${JNEXT_SKIP_AFTER_S:-100000}
  late() {
    if [ "$SECONDS" -ge "$skip_after" ]; then echo "--- skipped after ${SECONDS} s (JNEXT_SKIP_AFTER_S=$skip_after): $1" | tee -a "$summary"; return 0; fi
    return 1
  }
  [ $bench = 1 ] && suites="kernels $suites"
  for suite in $suites; do
    late "bench $suite" && continue
    $java -jar "$pack/jnext.jar" bench "$suite" --json "$OUT/bench-$suite.json" > "$OUT/bench-$suite.log" 2>&1 || rc=1
    echo "--- jnext bench $suite:" >> "$summary"; cat "$OUT/bench-$suite.log" >> "$summary"
  done
  if [ -n "$jmh" ] && ! late "jmh"; then
    local cp="$pack/jnext.jar:$pack/jnext-jmh.jar:$(ls "$pack"/lib/*.jar | grep -v junit | tr '\n' ':')"
    # shellcheck disable=SC2086
    $java -cp "$cp" org.openjdk.jmh.Main "$jmh" -rf json -rff "$OUT/jmh.json" -jvm "$jre/jre/bin/java" $jmhargs > "$OUT/jmh.log" 2>&1 || rc=1
    echo "--- jmh:" >> "$summary"; sed -n '/^Benchmark /,$p' "$OUT/jmh.log" >> "$summary"
  fi
  # synthetic 80B-geometry checkpoints for the model benchmarks, written once per machine: 8l (8 layers) and 48l (48)
  for m in $models; do
    local layers=${m%l} dir=/tmp/jnext-parity/ckpt-next80b-${m}-64e
    [ -f "$dir/config.json" ] || $java -jar "$pack/jnext.jar" synth --preset next-80b-a3b --layers "$layers" --experts 64 \
      --logit-scale 5 --out "$dir" >> "$OUT/models-synth.log" 2>&1 || rc=1
  done
  local i=0
  for c in "${clis[@]}"; do
    i=$((i + 1))
    late "jnext $c" && continue
    echo "--- jnext $c:" >> "$summary"
    # shellcheck disable=SC2086
    $java -jar "$pack/jnext.jar" $c > "$OUT/cli-$i.log" 2>&1 || rc=1
    tail -40 "$OUT/cli-$i.log" >> "$summary"
  done
  if [ -n "$sweep" ] && ! late "geometry sweep"; then
    # issue 16's geometry sweep (GeometrySweepGpuTest, tag gpu-sweep): random geometries, transformers' logits made here
    local seedprop=""
    [ "$sweep" = random ] || seedprop="-Djnext.sweep.seed=$sweep"
    # shellcheck disable=SC2086
    $java $seedprop -Djnext.repo="$root" -jar "$pack"/lib/junit-platform-console-standalone-*.jar execute \
      --class-path "$pack/jnext.jar:$pack/jnext-tests.jar" --select-class dev.jnext.cuda.GeometrySweepGpuTest \
      --details=tree --disable-banner --disable-ansi-colors --reports-dir "$OUT/junit-sweep" > "$OUT/sweep.log" 2>&1
    local src=$?
    echo "--- geometry sweep (exit $src):" | tee -a "$summary"
    grep -E "geometry sweep seed|seed .* geometry|prefill jnext|tests (successful|failed)" "$OUT/sweep.log" | tee -a "$summary"
    [ $src = 0 ] || rc=1
  fi
  if [ -n "$serve$soak" ] && ! late "serve bench"; then
    local ck=/tmp/jnext-parity/ckpt-next80b-8l-64e
    [ -f "$ck/config.json" ] || $java -jar "$pack/jnext.jar" synth --preset next-80b-a3b --layers 8 --experts 64 --logit-scale 5 \
      --out "$ck" > "$OUT/serve-synth.log" 2>&1 || rc=1
    # /v1/completions: the chat template's jinjava needs java.desktop (java.beans), which the jlinked runtime leaves out to
    # keep the pack under the 64 MiB a device call carries
    local sb="$java -jar $pack/jnext.jar bench serve --completions --model $ck --tokenizer $root/.cache/tokenizer-qwen3 --device cuda --max-sequences 32"
    for mode in $serve; do
      echo "--- jnext bench serve --graphs $mode:" >> "$summary"
      $sb --graphs "$mode" --requests 200 --concurrency 32 --max-tokens 256 --json "$OUT/serve-$mode.json" > "$OUT/serve-$mode.log" 2>&1 || rc=1
      tail -14 "$OUT/serve-$mode.log" >> "$summary"
    done
    if [ -n "$soak" ]; then
      echo "--- jnext bench serve --soak $soak:" >> "$summary"
      # issue 18.4: with the prefix cache (on by default) and a multi-turn load, streams cancelled and requests abandoned
      # mixed in, the metrics sampled every 10 s (tool requests need the chat endpoint: the CPU soak in serving.md runs them)
      $sb --graphs piecewise --workload multi-turn --turns 3 --requests 64 --concurrency 32 --max-tokens 128 --soak "$soak" \
        --sample-every 10s --mix cancel=0.1,disconnect=0.1 --json "$OUT/soak.json" > "$OUT/soak.log" 2>&1 || rc=1
      tail -14 "$OUT/soak.log" >> "$summary"
    fi
  fi
  if [ $launch_anchor = 1 ]; then
    echo "--- C launch anchor (src/reference/launch_anchor.cu):" >> "$summary"
    (nvcc -O2 -arch=sm_90 -o /tmp/launch_anchor "$root/src/reference/launch_anchor.cu" -lcuda && /tmp/launch_anchor) \
      > "$OUT/launch_anchor.json" 2>&1 || rc=1
    cat "$OUT/launch_anchor.json" >> "$summary"
  fi
  for sec in $anchors; do
    late "anchor $sec" && continue
    [ -f "$root/.anchors/anchor.py" ] || { echo "anchors: carry .anchors (anchor.py + pylib/)" | tee -a "$summary"; break; }
    (cd "$root/.anchors" && PYTHONPATH="$root/.anchors/pylib" OUT="$OUT" python3 anchor.py "$sec" > "$OUT/anchors_$sec.log" 2>&1) || rc=1
    echo "--- anchor $sec:" >> "$summary"; tail -25 "$OUT/anchors_$sec.log" >> "$summary"
  done
  # at most 8 files come back from the host: keep the summary and JSON figures, pack the logs
  # (tar into /tmp first: writing the archive inside the folder it reads makes tar fail)
  (cd "$OUT" && tar -czf /tmp/jnext-logs.tgz --exclude='*.json' --exclude=summary.txt . \
     && find . -mindepth 1 -not -name '*.json' -not -name summary.txt -delete && mv /tmp/jnext-logs.tgz logs.tgz)
  # still more than 8 files (many JSON figures): fold the JSON files into one archive too
  if [ "$(find "$OUT" -maxdepth 2 -type f | wc -l)" -gt 8 ]; then
    (cd "$OUT" && tar -czf /tmp/jnext-json.tgz ./*.json && rm -f ./*.json && mv /tmp/jnext-json.tgz figures.tgz)
  fi
  echo; echo "================ summary ================"; cat "$summary"
  return $rc
}

case "${1:-}" in
  pack) do_pack ;;
  run) shift; do_run "$@" ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
