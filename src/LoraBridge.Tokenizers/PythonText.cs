using System.Text;
using LoraBridge.Prompting;

namespace LoraBridge.Tokenizers;

/// <summary>
/// The CPython string operations openai/CLIP's <c>simple_tokenizer</c> runs before BPE, reproduced exactly:
/// <c>html.unescape</c>, <c>str.strip()</c>, the <c>regex</c> module's <c>\s+</c> collapse and <c>str.lower()</c>.
/// The data comes from PythonTables.g.cs (generated from CPython by tools/generate_python_tables.py) because .NET differs on each:
/// WebUtility.HtmlDecode knows only HTML4 entities and needs ';', ToLowerInvariant has no İ → "i̇" and no final sigma,
/// and char.IsWhiteSpace matches neither Python's isspace nor regex's \s.
/// </summary>
internal static partial class PythonText
{
    private static readonly Dictionary<int, int> LowerMap = BuildPairs(LowerPairs);
    private static readonly Dictionary<int, int> InvalidCharrefMap = BuildPairs(InvalidCharrefs);
    private static readonly HashSet<int> InvalidCodepointSet = [.. InvalidCodepoints];
    private static readonly Dictionary<string, string> Entities = BuildEntities();
    private static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> EntityLookup =
        Entities.GetAlternateLookup<ReadOnlySpan<char>>();

    private static Dictionary<int, int> BuildPairs(int[] pairs)
    {
        var map = new Dictionary<int, int>(pairs.Length / 2);
        for (int i = 0; i < pairs.Length; i += 2) map[pairs[i]] = pairs[i + 1];
        return map;
    }

    private static Dictionary<string, string> BuildEntities()
    {
        var map = new Dictionary<string, string>(Html5Entities.Length / 2, StringComparer.Ordinal);
        for (int i = 0; i < Html5Entities.Length; i += 2) map[Html5Entities[i]] = Html5Entities[i + 1];
        return map;
    }

    /// <summary>The <c>regex</c> module's <c>\s</c>: Unicode White_Space (without 0x1C–0x1F, unlike <c>re</c>).</summary>
    internal static bool IsRegexSpace(int c) =>
        c is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>Python's <c>html.unescape</c> (HTML5 named references incl. the no-semicolon prefixes).</summary>
    internal static string HtmlUnescape(string s)
    {
        int amp = s.IndexOf('&');
        if (amp < 0) return s;
        var sb = new StringBuilder(s.Length);
        sb.Append(s, 0, amp);
        int i = amp;
        while (i < s.Length)
        {
            if (s[i] != '&')
            {
                int next = s.IndexOf('&', i);
                if (next < 0) next = s.Length;
                sb.Append(s, i, next - i);
                i = next;
                continue;
            }
            int end = ReplaceCharref(s, i + 1, sb);
            if (end < 0)
            {
                sb.Append('&');
                i++;
            }
            else
            {
                i = end;
            }
        }
        return sb.ToString();
    }

    // Matches html's `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` at `start` (just after '&'),
    // appends the replacement and returns the end of the match, or -1 when the pattern does not match.
    private static int ReplaceCharref(string s, int start, StringBuilder sb)
    {
        if (start >= s.Length) return -1;
        if (s[start] == '#')
        {
            int p = start + 1;
            bool hex = p < s.Length && (s[p] == 'x' || s[p] == 'X');
            int digitsStart = hex ? p + 1 : p;
            int q = digitsStart;
            while (q < s.Length && (hex ? char.IsAsciiHexDigit(s[q]) : char.IsAsciiDigit(s[q]))) q++;
            if (q == digitsStart) return -1; // '#' is excluded from the named class, so nothing else can match
            // Python ints are unbounded; anything past 0x10FFFF behaves alike, so saturate there.
            long num = 0;
            for (int k = digitsStart; k < q; k++)
            {
                num = num * (hex ? 16 : 10) + HexValue(s[k]);
                if (num > 0x110000) num = 0x110000;
            }
            if (q < s.Length && s[q] == ';') q++;
            if (InvalidCharrefMap.TryGetValue((int)num, out int mapped)) sb.Append((char)mapped);
            else if (num is >= 0xD800 and <= 0xDFFF || num > 0x10FFFF) sb.Append('\uFFFD');
            else if (!InvalidCodepointSet.Contains((int)num)) sb.Append(char.ConvertFromUtf32((int)num));
            return q;
        }

        // Named: up to 32 code points outside [\t\n\f <&#;], then an optional ';'.
        int e = start, count = 0;
        while (e < s.Length && count < 32)
        {
            char c = s[e];
            if (c is '\t' or '\n' or '\f' or ' ' or '<' or '&' or '#' or ';') break;
            e += char.IsHighSurrogate(c) && e + 1 < s.Length && char.IsLowSurrogate(s[e + 1]) ? 2 : 1;
            count++;
        }
        if (count == 0) return -1;
        if (e < s.Length && s[e] == ';') e++;
        var name = s.AsSpan(start, e - start);
        if (EntityLookup.TryGetValue(name, out var value))
        {
            sb.Append(value);
            return e;
        }
        // Longest known prefix of at least 2 characters, shorter than the whole name (html5 keys are ASCII, so
        // UTF-16 lengths equal Python's code-point lengths for any prefix that can match).
        for (int x = name.Length - 1; x > 1; x--)
        {
            if (EntityLookup.TryGetValue(name[..x], out value))
            {
                sb.Append(value).Append(name[x..]);
                return e;
            }
        }
        sb.Append('&').Append(name);
        return e;
    }

    private static int HexValue(char c) => char.IsAsciiDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary><c>regex.sub(r'\s+', ' ', s)</c> with the <c>regex</c> module's \s.</summary>
    internal static string CollapseWhiteSpace(string s)
    {
        StringBuilder? sb = null;
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (!IsRegexSpace(c))
            {
                sb?.Append(c);
                i++;
                continue;
            }
            int j = i + 1;
            while (j < s.Length && IsRegexSpace(s[j])) j++;
            if (sb == null && !(j == i + 1 && c == ' '))
            {
                sb = new StringBuilder(s.Length);
                sb.Append(s, 0, i);
            }
            sb?.Append(' ');
            i = j;
        }
        return sb?.ToString() ?? s;
    }

    /// <summary>Python's <c>str.lower()</c>: full lowercasing, İ → "i̇", and Σ → ς in the Final_Sigma context.</summary>
    internal static string Lower(string s)
    {
        int i = 0;
        while (i < s.Length && s[i] < 0x80 && !char.IsAsciiLetterUpper(s[i])) i++;
        if (i == s.Length) return s;
        var sb = new StringBuilder(s.Length + 4);
        sb.Append(s, 0, i);
        while (i < s.Length)
        {
            int c = PyText.CodePointAt(s, i, out int n);
            if (c < 0x80) sb.Append(char.IsAsciiLetterUpper((char)c) ? (char)(c + 32) : (char)c);
            else if (c == 0x130) sb.Append("i\u0307");
            else if (c == 0x3A3) sb.Append(IsFinalSigma(s, i) ? '\u03C2' : '\u03C3');
            else if (LowerMap.TryGetValue(c, out int lower)) AppendCodePoint(sb, lower);
            else sb.Append(s, i, n);
            i += n;
        }
        return sb.ToString();
    }

    // CPython's handle_capital_sigma: \p{Cased}\p{Case_Ignorable}* Σ !(\p{Case_Ignorable}* \p{Cased}).
    private static bool IsFinalSigma(string s, int index)
    {
        int j = index, c = 0;
        bool found = false;
        while (j > 0)
        {
            c = PyText.CodePointBefore(s, j, out int n);
            j -= n;
            if (!InRanges(CaseIgnorableRanges, c)) { found = true; break; }
        }
        if (!found || !InRanges(CasedRanges, c)) return false;
        j = index + 1;
        while (j < s.Length)
        {
            c = PyText.CodePointAt(s, j, out int n);
            j += n;
            if (!InRanges(CaseIgnorableRanges, c)) return !InRanges(CasedRanges, c);
        }
        return true;
    }

    private static bool InRanges(int[] ranges, int c)
    {
        int lo = 0, hi = ranges.Length / 2 - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (c < ranges[2 * mid]) hi = mid - 1;
            else if (c > ranges[2 * mid + 1]) lo = mid + 1;
            else return true;
        }
        return false;
    }

    private static void AppendCodePoint(StringBuilder sb, int c)
    {
        if (c < 0x10000) sb.Append((char)c);
        else sb.Append(char.ConvertFromUtf32(c));
    }
}
