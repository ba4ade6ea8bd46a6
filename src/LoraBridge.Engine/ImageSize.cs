using System.Globalization;

namespace LoraBridge.Engine;

/// <summary>
/// The <c>WIDTHxHEIGHT</c> syntax every front end accepts (<c>--size</c>, <c>--hr-resize</c>, the TUI's size field):
/// the one parser of it. Which numbers are allowed is the caller's rule (a size needs both sides positive, a hires
/// resize one; <see cref="GenerationEngine.ValidateRequest"/> checks what generation needs).
/// </summary>
public static class ImageSize
{
    /// <summary>
    /// Two non-negative decimal integers around an <c>x</c> or <c>X</c> (surrounding white space ignored, nothing
    /// else: no signs, no spaces around the <c>x</c>); null when <paramref name="text"/> is not of that form.
    /// </summary>
    public static (int Width, int Height)? Parse(string text)
    {
        var parts = text.Trim().ToLowerInvariant().Split('x');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var w)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            ? (w, h) : null;
    }
}
