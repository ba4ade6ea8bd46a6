namespace LoraBridge.Prompting;

/// <summary>
/// One fragment of <c>parse_prompt_attention</c>: text and weight. The BREAK marker is text "BREAK" with weight -1
/// (<see cref="IsIntegerWeight"/> is true while it is A1111's unmultiplied integer -1).
/// </summary>
/// <param name="Text">Fragment text.</param>
/// <param name="Weight">Emphasis weight.</param>
/// <param name="IsIntegerWeight">True only for the unmultiplied BREAK marker (Python int -1).</param>
public readonly record struct AttentionFragment(string Text, double Weight, bool IsIntegerWeight = false)
{
    /// <summary>True where <c>sd_hijack_clip</c> starts a new chunk (weight == -1).</summary>
    public bool IsBreak => Text == "BREAK" && Weight == -1;
}

/// <summary><c>prompt_parser.parse_prompt_attention</c>, bit-exact (multiplications in A1111's order).</summary>
public static class Attention
{
    private const double RoundMultiplier = 1.1;
    private const double SquareMultiplier = 1 / 1.1;

    /// <summary>Parses emphasis; a weight token that Python's <c>float()</c> rejects gives a ValueError result.</summary>
    public static PromptResult<IReadOnlyList<AttentionFragment>> Parse(string text)
    {
        var res = new List<(string Text, double Weight, bool IsInt)>();
        var round = new List<int>();
        var square = new List<int>();
        int n = text.Length;
        int i = 0;
        void Multiply(int start, double m)
        {
            for (int p = start; p < res.Count; p++) res[p] = (res[p].Text, res[p].Weight * m, false);
        }
        void AddText(string t)
        {
            var parts = SplitBreak(t);
            for (int k = 0; k < parts.Count; k++)
            {
                if (k > 0) res.Add(("BREAK", -1, true));
                res.Add((parts[k], 1.0, false));
            }
        }
        while (i < n)
        {
            char c = text[i];
            if (c == '\\')
            {
                // \( \) \[ \] \\ give the character; any other backslash matches alone and gives "".
                if (i + 1 < n && text[i + 1] is '(' or ')' or '[' or ']' or '\\') { res.Add((text[i + 1].ToString(), 1.0, false)); i += 2; }
                else { res.Add(("", 1.0, false)); i += 1; }
            }
            else if (c == '(') { round.Add(res.Count); i++; }
            else if (c == '[') { square.Add(res.Count); i++; }
            else if (c == ':')
            {
                if (TryWeightToken(text, i, out int end, out string? weightText))
                {
                    if (round.Count > 0)
                    {
                        if (!PyText.TryParseFloat(weightText!, out double w))
                            return PromptResult<IReadOnlyList<AttentionFragment>>.Fail(new PromptError(PromptErrorKind.ValueError, i,
                                $"emphasis weight '{weightText}' is not a valid Python float"));
                        int open = round[^1];
                        round.RemoveAt(round.Count - 1);
                        Multiply(open, w);
                    }
                    else AddText(text[i..end]);
                    i = end;
                }
                else { AddText(":"); i++; }
            }
            else if (c == ')')
            {
                if (round.Count > 0) { int open = round[^1]; round.RemoveAt(round.Count - 1); Multiply(open, RoundMultiplier); }
                else AddText(")");
                i++;
            }
            else if (c == ']')
            {
                if (square.Count > 0) { int open = square[^1]; square.RemoveAt(square.Count - 1); Multiply(open, SquareMultiplier); }
                else AddText("]");
                i++;
            }
            else
            {
                int j = i + 1;
                while (j < n && text[j] is not ('\\' or '(' or ')' or '[' or ']' or ':')) j++;
                AddText(text[i..j]);
                i = j;
            }
        }
        foreach (int pos in round) Multiply(pos, RoundMultiplier);
        foreach (int pos in square) Multiply(pos, SquareMultiplier);
        if (res.Count == 0) res.Add(("", 1.0, false));
        var merged = new List<AttentionFragment>(res.Count);
        var sb = new System.Text.StringBuilder();
        for (int k = 0; k < res.Count;)
        {
            sb.Clear().Append(res[k].Text);
            int m = k + 1;
            // A1111 merges runs whose weights compare equal (so NaN never merges and 0.0 == -0.0 does).
            while (m < res.Count && res[k].Weight == res[m].Weight) sb.Append(res[m++].Text);
            merged.Add(new AttentionFragment(sb.ToString(), res[k].Weight, res[k].IsInt));
            k = m;
        }
        return PromptResult<IReadOnlyList<AttentionFragment>>.Ok(merged);
    }

    // :\s*([+-]?[.\d]+)\s*\)
    private static bool TryWeightToken(string s, int colon, out int end, out string? weight)
    {
        end = -1;
        weight = null;
        int p = colon + 1;
        int n = s.Length;
        int len;
        while (p < n && PyText.IsSpace(PyText.CodePointAt(s, p, out len))) p += len;
        int ws = p;
        if (p < n && s[p] is '+' or '-') p++;
        int bodyStart = p;
        while (p < n)
        {
            int cp = PyText.CodePointAt(s, p, out len);
            if (cp == '.' || PyText.DecimalValue(cp) >= 0) p += len; else break;
        }
        if (p == bodyStart) return false;
        int bodyEnd = p;
        while (p < n && PyText.IsSpace(PyText.CodePointAt(s, p, out len))) p += len;
        if (p >= n || s[p] != ')') return false;
        weight = s[ws..bodyEnd];
        end = p + 1;
        return true;
    }

    // re.split(r"\s*\bBREAK\b\s*", text) with Python's \s and \b.
    internal static List<string> SplitBreak(string t)
    {
        var parts = new List<string>();
        int from = 0; // end of the previous match
        int search = 0;
        while (true)
        {
            int hit = t.IndexOf("BREAK", search, StringComparison.Ordinal);
            if (hit < 0) break;
            if (!PyText.IsWordBoundary(t, hit) || !PyText.IsWordBoundary(t, hit + 5)) { search = hit + 1; continue; }
            int start = hit;
            while (start > from && PyText.IsSpace(PyText.CodePointBefore(t, start, out int l1))) start -= l1;
            int end = hit + 5;
            while (end < t.Length && PyText.IsSpace(PyText.CodePointAt(t, end, out int l2))) end += l2;
            parts.Add(t[from..start]);
            from = end;
            search = end;
        }
        parts.Add(t[from..]);
        return parts;
    }
}
