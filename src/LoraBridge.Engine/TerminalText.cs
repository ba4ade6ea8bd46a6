using System.Globalization;
using System.Text;

namespace LoraBridge.Engine;

/// <summary>
/// Makes text from outside (prompts, file names, safetensors metadata, PNG text, error messages quoting them) safe
/// to print: a control character would otherwise reach the terminal raw, and an ESC sequence can recolour the
/// screen, retitle the window, move the cursor over earlier output or (OSC 52) write the clipboard.
/// </summary>
public static class TerminalText
{
    /// <summary>
    /// <paramref name="text"/> with C0 controls (tab kept; newline kept when <paramref name="keepNewlines"/>), DEL, C1
    /// controls and the Unicode bidirectional overrides written as <c>\u001b</c>-style escapes; everything else as is.
    /// </summary>
    public static string Escape(string? text, bool keepNewlines = false)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        int i = 0;
        while (i < text.Length && !Unsafe(text[i], keepNewlines)) i++;
        if (i == text.Length) return text; // the common case allocates nothing
        var sb = new StringBuilder(text.Length + 16).Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (Unsafe(c, keepNewlines)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool Unsafe(char c, bool keepNewlines) => c switch
    {
        '\t' => false,
        '\n' => !keepNewlines,
        < ' ' => true,
        >= '\u007f' and <= '\u009f' => true,
        // Trojan-source style reordering of what the user reads.
        >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069' => true,
        _ => false,
    };
}
