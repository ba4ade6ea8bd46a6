using System.Globalization;
using System.Numerics;
using System.Text;

namespace LoraBridge.Prompting;

/// <summary>
/// Python 3 string semantics that A1111's regexes and number conversions depend on. .NET's <c>\s</c>, <c>\w</c>
/// and number parsing differ from Python's in small ways (e.g. U+001C is whitespace for Python only, U+0301 is a
/// word character for .NET only), and bit-exact conformance needs Python's view.
/// </summary>
public static class PyText
{
    /// <summary>Python <c>str.isspace()</c> for one code point (the full Python 3 list).</summary>
    public static bool IsSpace(int cp) =>
        cp is >= 0x09 and <= 0x0D or >= 0x1C and <= 0x20 or 0x85 or 0xA0 or 0x1680
            or >= 0x2000 and <= 0x200A or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>Python <c>re</c> <c>\w</c> for a str pattern: alphanumeric (letters, decimal, digit and numeric characters) or underscore.</summary>
    public static bool IsWord(int cp)
    {
        if (cp < 0x80)
            return cp is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '_';
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.DecimalDigitNumber
            or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
    }

    /// <summary>Python <c>re</c> <c>\d</c> (Unicode decimal digit); returns its value or -1.</summary>
    public static int DecimalValue(int cp)
    {
        if (cp is >= '0' and <= '9') return cp - '0';
        if (cp < 0x80) return -1;
        return CharUnicodeInfo.GetUnicodeCategory(cp) == UnicodeCategory.DecimalDigitNumber
            ? (int)CharUnicodeInfo.GetDecimalDigitValue(char.ConvertFromUtf32(cp), 0)
            : -1;
    }

    /// <summary>Code point at <paramref name="i"/> (a lone surrogate counts as itself) and its UTF-16 length.</summary>
    public static int CodePointAt(string s, int i, out int length)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            length = 2;
            return char.ConvertToUtf32(c, s[i + 1]);
        }
        length = 1;
        return c;
    }

    /// <summary>Code point that ends just before <paramref name="end"/>.</summary>
    public static int CodePointBefore(string s, int end, out int length)
    {
        char c = s[end - 1];
        if (char.IsLowSurrogate(c) && end >= 2 && char.IsHighSurrogate(s[end - 2]))
        {
            length = 2;
            return char.ConvertToUtf32(s[end - 2], c);
        }
        length = 1;
        return c;
    }

    /// <summary>Python's <c>\b</c> at UTF-16 index <paramref name="i"/>.</summary>
    public static bool IsWordBoundary(string s, int i)
    {
        bool before = i > 0 && IsWord(CodePointBefore(s, i, out _));
        bool after = i < s.Length && IsWord(CodePointAt(s, i, out _));
        return before != after;
    }

    /// <summary>Python <c>str.rstrip()</c> (no argument).</summary>
    public static string RStrip(string s)
    {
        int end = s.Length;
        while (end > 0 && IsSpace(CodePointBefore(s, end, out int len))) end -= len;
        return s[..end];
    }

    /// <summary>Python <c>str.strip()</c> (no argument).</summary>
    public static string Strip(string s)
    {
        int start = 0;
        while (start < s.Length && IsSpace(CodePointAt(s, start, out int len))) start += len;
        return RStrip(s[start..]);
    }

    /// <summary>
    /// Python <c>float(str)</c>: surrounding whitespace, sign, Unicode decimal digits, single underscores between
    /// digits, <c>inf</c>/<c>infinity</c>/<c>nan</c> in any case. Returns false where Python raises ValueError.
    /// </summary>
    public static bool TryParseFloat(string text, out double value)
    {
        value = 0;
        var s = ToAsciiDigits(Strip(text));
        if (s is null || s.Length == 0) return false;
        int i = 0;
        bool negative = false;
        if (s[0] is '+' or '-') { negative = s[0] == '-'; i = 1; }
        var rest = s[i..];
        var lower = rest.ToLowerInvariant();
        if (lower is "inf" or "infinity") { value = negative ? double.NegativeInfinity : double.PositiveInfinity; return true; }
        if (lower == "nan") { value = double.NaN; return true; }
        var clean = new StringBuilder(rest.Length + 1);
        int p = 0;
        int intDigits = ReadDigitPart(rest, ref p, clean);
        int fracDigits = 0;
        if (p < rest.Length && rest[p] == '.')
        {
            clean.Append('.');
            p++;
            fracDigits = ReadDigitPart(rest, ref p, clean);
            if (fracDigits < 0) return false;
        }
        if (intDigits < 0 || intDigits + Math.Max(fracDigits, 0) == 0) return false;
        if (p < rest.Length && rest[p] is 'e' or 'E')
        {
            clean.Append('e');
            p++;
            if (p < rest.Length && rest[p] is '+' or '-') clean.Append(rest[p++]);
            if (ReadDigitPart(rest, ref p, clean) <= 0) return false;
        }
        if (p != rest.Length) return false;
        value = double.Parse(clean.ToString(), NumberStyles.Float, CultureInfo.InvariantCulture);
        if (negative) value = -value;
        return true;
    }

    /// <summary>Python <c>int(str)</c> in base 10. Returns false where Python raises ValueError.</summary>
    public static bool TryParseInt(string text, out BigInteger value)
    {
        value = BigInteger.Zero;
        var s = ToAsciiDigits(Strip(text));
        if (s is null || s.Length == 0) return false;
        int i = 0;
        bool negative = false;
        if (s[0] is '+' or '-') { negative = s[0] == '-'; i = 1; }
        var rest = s[i..];
        var clean = new StringBuilder();
        int p = 0;
        if (ReadDigitPart(rest, ref p, clean) <= 0 || p != rest.Length) return false;
        value = BigInteger.Parse(clean.ToString(), CultureInfo.InvariantCulture);
        if (negative) value = -value;
        return true;
    }

    // digit (_? digit)*; returns digit count, 0 if none, -1 on a misplaced underscore.
    private static int ReadDigitPart(string s, ref int p, StringBuilder into)
    {
        int count = 0;
        while (p < s.Length)
        {
            char c = s[p];
            if (c is >= '0' and <= '9') { into.Append(c); count++; p++; }
            else if (c == '_' && count > 0 && p + 1 < s.Length && s[p + 1] is >= '0' and <= '9') p++;
            else if (c == '_') return -1;
            else break;
        }
        return count;
    }

    // Python maps every Unicode decimal digit to ASCII before parsing; other non-ASCII characters make it invalid.
    private static string? ToAsciiDigits(string s)
    {
        bool ascii = true;
        foreach (char c in s) if (c >= 0x80) { ascii = false; break; }
        if (ascii) return s;
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length;)
        {
            int cp = CodePointAt(s, i, out int len);
            i += len;
            if (cp < 0x80) { sb.Append((char)cp); continue; }
            int d = DecimalValue(cp);
            if (d < 0) return null;
            sb.Append((char)('0' + d));
        }
        return sb.ToString();
    }

    /// <summary>Python <c>repr(float)</c>: shortest round-trip digits, <c>1.0</c>, <c>1e+16</c>, <c>inf</c>.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // Shortest round-trip digits come from "R"; normalise them to digits + exponent.
        var shortest = d.ToString("R", CultureInfo.InvariantCulture);
        bool neg = shortest[0] == '-';
        if (neg) shortest = shortest[1..];
        int exp = 0;
        int ePos = shortest.IndexOfAny(['E', 'e']);
        if (ePos >= 0) { exp = int.Parse(shortest[(ePos + 1)..], CultureInfo.InvariantCulture); shortest = shortest[..ePos]; }
        int dot = shortest.IndexOf('.');
        string digits = dot >= 0 ? shortest.Remove(dot, 1) : shortest;
        int pointPos = (dot >= 0 ? dot : shortest.Length) + exp; // decimal point position in digits
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; pointPos--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int sciExp = pointPos - 1;
        string body;
        if (sciExp < -4 || sciExp >= 16)
        {
            string mant = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            body = mant + "e" + (sciExp < 0 ? "-" : "+") + Math.Abs(sciExp).ToString("00", CultureInfo.InvariantCulture);
        }
        else if (pointPos <= 0) body = "0." + new string('0', -pointPos) + digits;
        else if (pointPos >= digits.Length) body = digits + new string('0', pointPos - digits.Length) + ".0";
        else body = digits[..pointPos] + "." + digits[pointPos..];
        return neg ? "-" + body : body;
    }
}
