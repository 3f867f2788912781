#!/usr/bin/env python3
"""Writes src/reference/tokenizer_corpus.jsonl: the strings the Qwen tokenizer parity goldens cover.

Standard library only; runs anywhere (python3 src/reference/make_tokenizer_corpus.py). Each line is
{"id": "<group>-<n>", "text": "..."}. The groups aim at the places a re-implementation breaks:
the Split regex (contractions in any case, \\p{L}/\\p{N}, whitespace runs, \\r\\n), NFC, byte-level
mapping of every script, emoji sequences, added tokens matched inside text, and long inputs.
"""
import json
import pathlib
import random

OUT = pathlib.Path(__file__).with_name("tokenizer_corpus.jsonl")

groups: dict[str, list[str]] = {}


def group(name, items):
    groups.setdefault(name, []).extend(items)


group("empty", ["", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\t \t", "\u3000", "\u00a0",
                "\r\n\r\n", " \r\n", "\n \n", "          ", "\n\n\n\n\n\n\n\n"])

group("english", [
    "Hello world",
    " Hello world",
    "Hello  world",
    "Hello world ",
    "hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.",
    "Mr. O'Neil's dog didn't bark; the neighbours' cats did.",
    "e.g. i.e. etc. vs. a.m. p.m.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "A sentence with trailing newline.\n",
    "Line one\nLine two\nLine three",
    "Windows line one\r\nWindows line two\r\n",
    "Mixed\r\nendings\nhere\rand there",
    "Tabs\tbetween\twords",
    "Multiple   spaces   between   words",
    "word\n\n\nword",
    "  leading spaces",
    "trailing spaces   ",
    "trailing spaces then newline   \n",
    "spaces before newline  \n  and after",
    "\n\nstarts with newlines",
    "question? exclamation! ellipsis... dash - em—dash – en–dash",
    "(parentheses) [brackets] {braces} <angles>",
    "\"double quotes\" 'single quotes' `backticks`",
    "“curly double” ‘curly single’ «guillemets» „German“",
    "Email me at jane.doe+tag@example.com or visit https://example.org/path?q=1&r=2#frag",
    "C:\\Users\\jane\\Documents\\file.txt and /usr/local/bin/java",
    "#hashtag @mention $dollar %percent ^caret &amp *star _under_ ~tilde",
    "Costs $4.99, €5,00, £3.50, ¥500, ₹100, ₿0.001",
    "ALL CAPS SHOUTING AND lowercase whispering and MiXeD cAsE",
    "camelCaseIdentifier snake_case_identifier kebab-case-identifier SCREAMING_SNAKE",
])

contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
cases = []
for c in contractions:
    for variant in {c, c.upper(), c[:2].upper() + c[2:], c[:1] + c[1:].title()}:
        cases.append(f"it{variant} fine")
cases += [
    "I'm", "I'M", "i'm", "You're", "YOU'RE", "you'Re", "We've", "WE'VE", "they'LL", "She'd", "SHE'D",
    "don't", "DON'T", "Don'T", "isn't it's", "'s", "'S", "'t", "'ll", "'LL", "'Ll", "'lL",
    "rock'n'roll", "o'clock", "''", "'''", "'", "' s", "'s'", "'sss", "'tis", "'Twas the night",
    "The dog's bone", "the DOGS' bones", "James's", "'re'd'll", "x'y", "'1", "'é",
    "it’s curly", "it‘s curly open", "it`s backtick",
    "'ſ long s", "'ſt", "IT'ſ",  # U+017F folds to s under Unicode case-insensitive matching
    "'K kelvin sign K", "'İ dotted capital I", "'ı dotless i",
]
group("contractions", cases)

group("digits", [
    "0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "-273.15", "1,000,000", "1e-9",
    "0x1F600", "0b1010", "2024-06-30T12:34:56Z", "v1.2.3-beta.4", "+1 (555) 123-4567", "100%", "1/2 3/4",
    "٠١٢٣٤٥٦٧٨٩ Arabic-Indic", "۰۱۲۳ Persian", "०१२३४ Devanagari", "১২৩ Bengali", "๑๒๓ Thai",
    "１２３４５ fullwidth", "² ³ ¹ superscripts", "₀₁₂ subscripts", "½ ¼ ¾ ⅓ fractions", "Ⅰ Ⅱ Ⅻ ⅻ Roman", "① ② ⑩ circled",
    "𝟘𝟙𝟚 math digits", "〇一二三 CJK numerals", "x2y3z4", "abc123def", "H2O CO2 C6H12O6", "a1b2c3d4e5f6",
])

group("scripts", [
    "Bonjour, ça va? Très bien, merci. L'été est là, où est l'hôtel?",
    "Grüß Gott! Straße, Größe, Übermäßig, Fußgängerübergänge.",
    "¿Dónde está la biblioteca? ¡Qué día tan bonito! El niño comió piña.",
    "Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.",
    "Tiếng Việt có dấu: Xin chào, tôi là người Việt Nam. Đường phố.",
    "Türkçe: Iğdır'da ılık bir gün; İstanbul'a gidiyorum.",
    "Ελληνικά: Καλημέρα κόσμε! Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "Русский: Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Українська: Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!",
    "Български: Жълтата дюля беше щастлива, че пухът, който цъфна, замръзна като гьон.",
    "العربية: مرحبا بالعالم! كيف حالك اليوم؟ نص عربي مع تشكيل: مَرْحَبًا",
    "עברית: שלום עולם! דג סקרן שט בים מאוכזב ולפתע מצא חברה.",
    "فارسی: سلام دنیا! به کجا چنین شتابان؟",
    "हिन्दी: नमस्ते दुनिया! ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।",
    "বাংলা: আমি বাংলায় গান গাই। ক্ষ ত্র জ্ঞ",
    "தமிழ்: வணக்கம் உலகம்! யாமறிந்த மொழிகளிலே தமிழ்மொழி போல் இனிதாவது எங்கும் காணோம்.",
    "తెలుగు: నమస్కారం ప్రపంచం",
    "ಕನ್ನಡ: ನಮಸ್ಕಾರ ಜಗತ್ತು",
    "മലയാളം: നമസ്കാരം ലോകം",
    "ગુજરાતી: નમસ્તે વિશ્વ",
    "ਪੰਜਾਬੀ: ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਦੁਨੀਆ",
    "ไทย: สวัสดีชาวโลก เป็นมนุษย์สุดประเสริฐเลิศคุณค่า",
    "ລາວ: ສະບາຍດີໂລກ",
    "ខ្មែរ: សួស្តីពិភពលោក",
    "မြန်မာ: မင်္ဂလာပါ ကမ္ဘာလောက",
    "සිංහල: ආයුබෝවන් ලෝකය",
    "ქართული: გამარჯობა მსოფლიო",
    "Հայերեն: Բարեւ աշխարհ",
    "አማርኛ: ሰላም ልዑል",
    "ᏣᎳᎩ Cherokee ᎣᏏᏲ",
    "ᠮᠣᠩᠭᠣᠯ Mongolian script",
    "ⵜⴰⵎⴰⵣⵉⵖⵜ Tifinagh",
    "中文：你好，世界！我能吞下玻璃而不伤身体。",
    "繁體中文：我能吞下玻璃而不傷身體。臺灣、香港。",
    "日本語：こんにちは世界！いろはにほへと ちりぬるを カタカナ ｶﾀｶﾅ 漢字",
    "한국어: 안녕하세요 세계! 다람쥐 헌 쳇바퀴에 타고파.",
    "中英混合 mixed text with 中文 and English 123 和数字",
    "日本語とEnglishのmixed文章です。",
    "𠀀𠀁𠀂 CJK Extension B, 𪚥 four dragons, 𡨸 chữ Nôm",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝒮𝒸𝓇𝒾𝓅𝓉 𝐁𝐨𝐥𝐝",
    "𓀀𓀁𓂀 Egyptian hieroglyphs, 𐌰𐌱𐌲 Gothic, 𐎀𐎁 Ugaritic",
    "ᚠᚢᚦᚨᚱᚲ runes ᚷᚹᚺ",
    "Ꭰ Ꭱ Ꭲ and ꭰ ꭱ lowercase Cherokee",
    "ʻOkina Hawaiʻi ʼapostrophe modifier letter",
    "Ǆ ǅ ǆ titlecase digraphs ǈ ǋ",
    "ﬁ ﬂ ﬀ ligatures and ẞ capital sharp s",
    "Ａｌｐｈａ fullwidth Latin ＡＢＣ ａｂｃ！？",
    "ｈａｌｆ ﾊﾝｶｸ halfwidth katakana",
])

group("nfc", [
    "e\u0301",                           # e + combining acute -> é
    "Cafe\u0301 au lait",
    "A\u030a",                           # A + ring -> Å
    "\u212b Angstrom sign",              # U+212B -> U+00C5
    "\u2126 Ohm sign",                   # U+2126 -> U+03A9
    "\u212a Kelvin sign",                # U+212A -> K
    "o\u0308 u\u0308 a\u0308",
    "n\u0303 ma\u0303nana",
    "\u1100\u1161\u11a8",                # Hangul jamo -> 각
    "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "Vie\u0323\u0302t Nam",              # two combining marks, reordered then composed
    "q\u0307\u0323",                     # canonical reordering without a precomposed form
    "s\u0323\u0307",                     # -> ṩ
    "\u0041\u0300\u0301",
    "\uf900\uf901 CJK compatibility ideographs",
    "\u0344 combining greek dialytika tonos",
    "\u0958 Devanagari qa decomposes",
    "\u00c5 already composed",
    "x\u0301\u0301\u0301 stacked",
    "\u0301 leading combining mark",
    "\u0928\u093c \u0915\u093c",
    "i\u0307 dotted",
    "\u03a9\u0301 \u1f7d",
    "Zalgo: Z\u0351\u036b\u0343a\u036b\u0346\u0310l\u0357g\u0352o\u0311\u0341\u0301",
    "\u00e9 vs e\u0301 vs \u0065\u0301",
    "\u1e9b\u0323",
])

group("emoji", [
    "😀", "😀😃😄😁", "I ❤️ tokenizers 🚀🔥",
    "👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "👨‍👩‍👧‍👦 family", "👩‍❤️‍💋‍👨 kiss", "🧑‍💻 technologist", "👩🏽‍🚀 astronaut", "🏳️‍🌈 rainbow flag", "🏴‍☠️ pirate flag",
    "🇺🇸🇯🇵🇩🇪🇨🇳 flags", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland tag sequence",
    "1️⃣ 2️⃣ #️⃣ *️⃣ keycaps",
    "☺ ☺️ text vs emoji presentation ♥ ♥️",
    "emoji😀glued😀to😀words",
    "🙂" * 40,
    "🤖: beep boop 🤖🤖🤖",
    "🐉🐲🦄🦕🦖 animals 🐈‍⬛ black cat",
    "🫠🫥🫨 newer emoji",
    "⌚⌛⏰ ☀️⛅🌧️ weather",
    "👁️‍🗨️ eye in speech bubble",
    "❤️‍🔥 heart on fire ❤️‍🩹 mending heart",
])

group("symbols", [
    "∀x∈ℝ: x² ≥ 0 ∧ ∃y ∉ ∅ ⇒ ∑ᵢ aᵢ ≤ ∫₀^∞ f(x) dx ≈ π ≠ ∞",
    "→ ← ↑ ↓ ↔ ⇐ ⇔ ⟶ arrows",
    "┌──┬──┐\n│ab│cd│\n└──┴──┘",
    "░▒▓█ blocks ■□▪▫",
    "♠♣♥♦ ♩♪♫♬ ☯☮✝☪",
    "© ® ™ § ¶ † ‡ • ° ′ ″",
    "« » ‹ › ¡ ¿ ‽ ⁂",
    "µ vs μ, ß vs ss, ﬀ vs ff",
    "\u200b zero width space \u200b",
    "zero\u200cwidth\u200dnon joiner and joiner",
    "\ufeffBOM at start",
    "soft\u00adhyphen",
    "nbsp\u00a0between\u00a0words",
    "em\u2003space thin\u2009space hair\u200aspace",
    "ideographic\u3000space",
    "next\u0085line",
    "line\u2028separator paragraph\u2029separator",
    "mongolian\u180evowel separator",
    "vertical\u000btab form\u000cfeed",
    "control \u0001\u0002\u0003\u001b[31m red \u001b[0m",
    "null \u0000 byte",
    "delete \u007f char",
    "\u202eRTL override\u202c and \u200fRLM",
    "private use \ue000\uf8ff \U000f0000",
    "noncharacters \ufdd0 \ufffe \U0001fffe",
    "replacement \ufffd char",
    "variation selectors \u2764\ufe0e \u2764\ufe0f 葛\U000e0100",
])

group("whitespace", [
    "a b", "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a\r\n\r\nb", "a \nb", "a\n b",
    "a  \n  b", "a \t \n \t b", "  a  ", "\ta\t", "\na\n", "a\n", "a ", " a", "a\r", "\r\na",
    "a" + " " * 17 + "b", "a" + "\n" * 9 + "b", "x" + " \n" * 5, "x" + "\t" * 8,
    "   \n", "\n   ", " \t\n\r\n\t ", "a\u00a0\u00a0b", "a \u3000 b", "a\u2003\u2003b",
    "end with two spaces  ", "!  !", "!!  \n  !!", "? \r\n", "x\r\r\ny", ".\n\n.",
])

group("code", [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "public static void main(String[] args) {\n\tSystem.out.println(\"Hello, world!\");\n}",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "const f = async (x) => { await fetch(`/api/${x}`); return x ?? null; };",
    "fn main() -> Result<(), Box<dyn Error>> {\n    let v: Vec<u8> = vec![1, 2, 3];\n    Ok(())\n}",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'J%' ORDER BY name DESC;",
    "<!DOCTYPE html>\n<html lang=\"en\"><head><title>Test</title></head><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done 2>&1 | tee log",
    "x = [i ** 2 for i in range(10) if i % 2 == 0]  # squares",
    "if (a != b && c <= d || !e) { x >>= 2; y <<= 3; z ^= ~w; }",
    "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@(?:[a-z0-9-]+\\.)+[a-z]{2,}$",
    "    indented four\n        indented eight\n\tindented tab\n",
    "class Foo:\n    '''Docstring.'''\n\n    def __init__(self):\n        self._x = None\n",
    "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-old line\n+new line\n",
    "\\documentclass{article}\n\\begin{equation} E = mc^2 \\quad \\frac{a}{b} \\end{equation}",
    "| col1 | col2 |\n|------|------|\n| a    | b    |",
    "# Title\n\n## Subtitle\n\n- item *one*\n- item **two**\n\n```python\nprint('x')\n```\n",
    "key: value\nlist:\n  - a\n  - b\nnested:\n  k: 'v'\n",
    "a=1;b=2;;c===3!==4...5",
    "i++; j--; k += 1; l -= 1; m *= 2; n /= 2; o %= 3;",
    "/* block comment */ // line comment\n<!-- html comment -->",
    "0xDEADBEEF 0o755 1_000_000 3.0e+10f 1.5L 'c' '\\n' '\\u00e9'",
    "std::vector<std::unique_ptr<Node>> nodes; nodes.emplace_back(new Node{});",
    "lambda x: x if x else None",
    "$ git commit -m \"fix: don't crash\" && git push origin HEAD:main",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "uuid 123e4567-e89b-12d3-a456-426614174000 sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
])

group("json", [
    '{"name": "Alice", "age": 30, "tags": ["a", "b"], "nested": {"ok": true, "none": null}}',
    '{"a":1,"b":[1,2,3],"c":{"d":"e"}}',
    '[\n  {\n    "id": 1,\n    "value": 3.5\n  },\n  {\n    "id": 2,\n    "value": -1e10\n  }\n]',
    '{"unicode": "caf\\u00e9 \\ud83d\\ude00", "escaped": "line\\nbreak \\"quote\\""}',
    '{"emoji": "😀", "cjk": "中文", "empty": "", "arr": []}',
    '{"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}',
    '{"\\t": "\\\\", "/": "\\/"}',
])

group("special", [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|><|endoftext|>",
    " <|im_end|> spaces around ",
    "<think>\nreasoning here\n</think>\n\nanswer",
    "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
    "<tool_response>ok</tool_response>",
    "<|fim_prefix|>def f(<|fim_suffix|>):\n    pass<|fim_middle|>",
    "<|vision_start|><|image_pad|><|vision_end|>",
    "<|repo_name|>jnext<|file_sep|>README.md",
    "<|box_start|>(1,2),(3,4)<|box_end|> <|quad_start|><|quad_end|> <|object_ref_start|>x<|object_ref_end|>",
    "<|video_pad|><|vision_pad|><|fim_pad|>",
    "<|im_start|", "im_start|>", "<|IM_START|>", "< |im_start| >", "<<|im_end|>>", "<|im_end|><|im_end|>",
    "<|endoftext|>\n<|endoftext|>\n",
    "x<think>y</think>z",
    "<thinking>not a token</thinking>",
    "<|unknown_token|>",
    "<|endoftext|>😀<|endoftext|>",
])


def long_strings():
    rnd = random.Random(1234)
    words = ("the of and to in is was for on that with as by at from it be this are or an have not which "
             "but had they you were his her their one all we can there been if more when will would who so "
             "tokenizer model inference graph kernel tensor Qwen Java memory latency throughput").split()
    prose = " ".join(rnd.choice(words) for _ in range(1200))
    return [
        "a" * 1000,
        "ab" * 500,
        " " * 300,
        "\n" * 200,
        "1" * 300,
        "😀" * 150,
        "字" * 400,
        "- " * 200,
        "=" * 256,
        ". " * 100 + "end",
        prose,
        prose.upper()[:3000],
        "\n".join(f"{i}: line number {i} with some text" for i in range(150)),
    ]


group("long", long_strings())


def mixed():
    rnd = random.Random(42)
    pieces = ["hello", " world", "你好", "😀", "👨‍👩‍👧", "'s", "'LL", "123", " ", "  ", "\n", "\r\n", "\t", "é",
              "e\u0301", "ß", "Ж", "ש", "ع", "न", "ก", "가", "の", ".", ",", "!!", "{\"k\":", "}", "<|im_end|>",
              "<think>", "\u00a0", "\u3000", "x̃", "𝕏", "🇯🇵", "ǅ", "½", "٣", "  \n", "\t\n", "--", "://"]
    out = []
    for i in range(40):
        n = rnd.randint(1, 25)
        out.append("".join(rnd.choice(pieces) for _ in range(n)))
    return out


group("mixed", mixed())

group("prose", [
    "Tokenization is the first step of every language model pipeline. Byte-level BPE guarantees that any "
    "string can be encoded, because every byte has a token; merges learned from data then combine frequent "
    "byte sequences into longer tokens. The pre-tokenizer decides where merges may never cross: between "
    "letters and digits, around punctuation, and at whitespace boundaries.\n\nA second paragraph follows "
    "after a blank line. It mentions numbers like 2025 and 3.5, contractions like we'll and they're, and "
    "ends with a question?",
    "Der schnelle braune Fuchs springt über den faulen Hund. Die Würde des Menschen ist unantastbar. "
    "Sie zu achten und zu schützen ist Verpflichtung aller staatlichen Gewalt.",
    "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему.",
    "人工智能是计算机科学的一个分支，它企图了解智能的实质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器。"
    "该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。",
    "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다. 인간은 천부적으로 이성과 양심을 부여받았으며 서로 형제애의 정신으로 행동하여야 한다.",
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق. وقد وهبوا عقلاً وضميرًا وعليهم أن يعامل بعضهم بعضًا بروح الإخاء.",
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
])

rows = []
for name, items in groups.items():
    for i, text in enumerate(items):
        rows.append({"id": f"{name}-{i}", "text": text})

with OUT.open("w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        line = json.dumps(r, ensure_ascii=False)
        # keep every line splittable by any reader: escape the Unicode line and paragraph separators
        for ch in ("\u0085", "\u2028", "\u2029"):
            line = line.replace(ch, "\\u%04x" % ord(ch))
        f.write(line + "\n")
print(f"wrote {len(rows)} strings to {OUT}")
