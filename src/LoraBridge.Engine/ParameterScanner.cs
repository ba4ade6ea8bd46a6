using System.Text.RegularExpressions;

namespace LoraBridge.Engine;

/// <summary>
/// The matches of A1111's parameter pattern <c>\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)</c> over one
/// line, found in linear time. Why it is equivalent: the key class excludes ':', so the key is always the longest
/// run of key characters and must be followed by ':'; a start inside a run that failed fails at the same place, so
/// the scan skips the whole run. A quoted value ends at the first unescaped quote and counts only when a comma or the
/// end follows; otherwise, as the regex falls back, the value is everything up to the next comma.
/// </summary>
internal static class ParameterScanner
{
    // \w and \s exactly as .NET's regex defines them (they differ from char.IsLetterOrDigit / IsWhiteSpace at the edges).
    private static readonly Lazy<(bool[] Word, bool[] Space)> Classes = new(() =>
    {
        var word = new bool[65536];
        var space = new bool[65536];
        var w = new Regex(@"^\w$", RegexOptions.CultureInvariant);
        var sp = new Regex(@"^\s$", RegexOptions.CultureInvariant);
        for (int c = 0; c < 65536; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue; // lone surrogates are never \w or \s
            var one = ((char)c).ToString();
            word[c] = w.IsMatch(one);
            space[c] = sp.IsMatch(one);
        }
        return (word, space);
    });

    /// <summary>(key, raw value) pairs, in order, as <c>re_param.findall</c> would return them.</summary>
    public static List<(string Key, string Value)> Scan(string line)
    {
        var (word, space) = Classes.Value;
        bool IsKey(char c) => word[c] || c is ' ' or '-' or '/';
        var result = new List<(string, string)>();
        int n = line.Length, p = 0;
        while (p < n)
        {
            int q = p;
            while (q < n && space[line[q]]) q++;
            // The key: one \w, then at least one more key character, all of the run, then ':'.
            if (q >= n || !word[line[q]])
            {
                p = q > p ? q : p + 1;
                continue;
            }
            int runEnd = q + 1;
            while (runEnd < n && IsKey(line[runEnd])) runEnd++;
            if (runEnd - q < 2 || runEnd >= n || line[runEnd] != ':')
            {
                // Every start inside this run reaches the same end: skip it whole. (A one-character run followed
                // by ':' fails too, and so does every later start within it.)
                p = runEnd > p ? runEnd : p + 1;
                continue;
            }
            string key = line[q..runEnd];
            int v = runEnd + 1;
            while (v < n && space[line[v]]) v++;
            int end = -1;
            string value = "";
            if (v < n && line[v] == '"')
            {
                int i = v + 1;
                int inner = 0;
                while (i < n)
                {
                    char c = line[i];
                    if (c == '"') break;
                    if (c == '\\')
                    {
                        if (i + 1 >= n || line[i + 1] == '\n') { i = n + 1; break; }
                        i += 2;
                    }
                    else
                    {
                        i++;
                    }
                    inner++;
                }
                if (i < n && line[i] == '"' && inner > 0)
                {
                    int after = i + 1;
                    if (after == n || (after == n - 1 && line[after] == '\n'))
                    {
                        value = line[v..after];
                        end = after;
                    }
                    else if (line[after] == ',')
                    {
                        value = line[v..after];
                        end = after + 1;
                    }
                }
            }
            if (end < 0)
            {
                int comma = line.IndexOf(',', v);
                value = comma < 0 ? line[v..] : line[v..comma];
                end = comma < 0 ? n : comma + 1;
            }
            result.Add((key, value));
            p = end;
        }
        return result;
    }
}
