namespace LoraBridge.Prompting;

/// <summary>One AND part: its text, its composable weight and where it starts in the (tag-stripped) prompt.</summary>
/// <param name="Text">Sub-prompt with trailing whitespace and the trailing weight removed.</param>
/// <param name="Weight">Trailing <c>:number</c>, default 1.0.</param>
/// <param name="Start">Offset of the part in the prompt it was split from.</param>
public sealed record AndPart(string Text, double Weight, int Start);

/// <summary><c>prompt_parser.get_multicond_prompt_list</c> for one prompt.</summary>
public static class Multicond
{
    /// <summary>Splits on <c>\bAND\b</c> and takes the trailing <c>:weight</c> off every part.</summary>
    /// <param name="prompt">The prompt, extra-network tags removed.</param>
    /// <param name="invisible">
    /// Characters A1111 would not see (LoRA-tag placeholders that ride along in prompt editing): the trailing weight
    /// and the trailing whitespace are found as if they were absent, and they are kept at the end of the part, so the
    /// scheduled texts equal A1111's.
    /// </param>
    public static IReadOnlyList<AndPart> Split(string prompt, Func<char, bool>? invisible = null)
    {
        var parts = new List<AndPart>();
        int start = 0;
        int i = 0;
        while (true)
        {
            int hit = prompt.IndexOf("AND", i, StringComparison.Ordinal);
            if (hit < 0) break;
            if (PyText.IsWordBoundary(prompt, hit) && PyText.IsWordBoundary(prompt, hit + 3))
            {
                parts.Add(WithWeight(prompt[start..hit], start, invisible));
                start = hit + 3;
                i = start;
            }
            else i = hit + 1;
        }
        parts.Add(WithWeight(prompt[start..], start, invisible));
        return parts;
    }

    private static AndPart WithWeight(string sub, int start, Func<char, bool>? invisible)
    {
        if (invisible is null) return WithWeight(sub, start);
        // Take the invisible characters out of the trailing run of whitespace and invisibles (and out of the run
        // before a weight's ':'), split as A1111 would, then put them back at the end of the text.
        int end = sub.Length;
        var held = new System.Text.StringBuilder();
        while (end > 0 && (invisible(sub[end - 1]) || PyText.IsSpace(sub[end - 1])))
        {
            end--;
            if (invisible(sub[end])) held.Insert(0, sub[end]);
        }
        var part = WithWeight(sub[..end], start);
        var text = part.Text;
        int cut = text.Length;
        while (cut > 0 && (invisible(text[cut - 1]) || PyText.IsSpace(text[cut - 1]))) cut--;
        var kept = new string(text[cut..].Where(invisible).ToArray());
        return part with { Text = text[..cut] + kept + held };
    }

    // re_weight = ^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$ : the lazy text group means the weight,
    // when present, is after the last ':' and the text loses the whitespace before that ':'.
    private static AndPart WithWeight(string sub, int start)
    {
        int colon = sub.LastIndexOf(':');
        if (colon >= 0 && TryWeight(sub, colon + 1, out double w))
            return new AndPart(PyText.RStrip(sub[..colon]), w, start);
        return new AndPart(PyText.RStrip(sub), 1.0, start);
    }

    private static bool TryWeight(string s, int p, out double weight)
    {
        weight = 0;
        int n = s.Length;
        int cp, len;
        while (p < n && PyText.IsSpace(PyText.CodePointAt(s, p, out len))) p += len;
        var num = new System.Text.StringBuilder();
        if (p < n && s[p] is '+' or '-') num.Append(s[p++]);
        int digits = 0, dots = 0;
        while (p < n)
        {
            cp = PyText.CodePointAt(s, p, out len);
            int d = PyText.DecimalValue(cp);
            if (d >= 0) { num.Append((char)('0' + d)); digits++; }
            else if (cp == '.' && dots == 0) { num.Append('.'); dots++; }
            else break;
            p += len;
        }
        // \d+\.? or \d*\.\d+ : at most one dot and at least one digit on either side of it.
        if (digits == 0) return false;
        while (p < n && PyText.IsSpace(PyText.CodePointAt(s, p, out len))) p += len;
        if (p != n) return false;
        weight = double.Parse(num.ToString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);
        return true;
    }
}
