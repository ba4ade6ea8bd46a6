using Terminal.Gui.Input;
using Terminal.Gui.Views;

namespace LoraBridge.Tui;

/// <summary>
/// A one-line choice among fixed values: ← / → (or Space) step through them, typing is not possible, so the field can
/// only hold a value the engine accepts.
/// </summary>
public sealed class ChoiceField : TextField
{
    /// <summary>Creates the field; <paramref name="value"/> is matched case-insensitively (else the first choice).</summary>
    public ChoiceField(IReadOnlyList<string> choices, string value)
    {
        if (choices.Count == 0) throw new ArgumentException("a choice field needs at least one choice", nameof(choices));
        Choices = choices;
        ReadOnly = true;
        Select(value);
    }

    /// <summary>The values offered, in order.</summary>
    public IReadOnlyList<string> Choices { get; }

    /// <summary>Shows <paramref name="value"/> when it is one of the choices (case-insensitive); false otherwise.</summary>
    public bool Select(string value)
    {
        var i = IndexOf(value);
        Text = Choices[i < 0 ? 0 : i];
        return i >= 0;
    }

    /// <summary>Moves to the next (or previous) choice, wrapping around.</summary>
    public void Step(int by)
    {
        var i = Math.Max(0, IndexOf(Text));
        Text = Choices[((i + by) % Choices.Count + Choices.Count) % Choices.Count];
    }

    /// <inheritdoc/>
    protected override bool OnKeyDown(Key key)
    {
        if (key == Key.CursorRight || key == Key.Space) { Step(1); return true; }
        if (key == Key.CursorLeft) { Step(-1); return true; }
        return base.OnKeyDown(key);
    }

    private int IndexOf(string value)
    {
        for (int i = 0; i < Choices.Count; i++)
            if (string.Equals(Choices[i], value.Trim(), StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }
}
