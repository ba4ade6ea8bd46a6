using System.Collections.ObjectModel;
using Terminal.Gui.Input;
using Terminal.Gui.Views;

namespace LoraBridge.Tui;

/// <summary>
/// A one-line choice among fixed values, built on Terminal.Gui's <see cref="DropDownList"/> in read-only mode: a mouse
/// click (or Alt+↓) opens the list of choices and a click on one picks it, as a drop-down does in any GUI; ← / → (or
/// Space) step through the values without opening it. Typing is not possible, so the field can only hold a value the
/// engine accepts.
/// </summary>
public sealed class ChoiceField : DropDownList
{
    /// <summary>Creates the field; <paramref name="value"/> is matched case-insensitively (else the first choice).</summary>
    public ChoiceField(IReadOnlyList<string> choices, string value)
    {
        if (choices.Count == 0) throw new ArgumentException("a choice field needs at least one choice", nameof(choices));
        Choices = choices;
        ReadOnly = true;
        Source = new ListWrapper<string>(new ObservableCollection<string>(choices));
        // F4 is the window's LoRA/embeddings switch (F1 help); Alt+↓ and the mouse open the list.
        KeyBindings.Remove(Key.F4);
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
        // Letters would search the choices; a one-line choice is stepped, not typed into (and the key must not
        // reach the window's text handling either).
        if (key.AsRune.Value is > 32 and not 127 && !key.IsAlt && !key.IsCtrl) return true;
        return base.OnKeyDown(key);
    }

    private int IndexOf(string value)
    {
        for (int i = 0; i < Choices.Count; i++)
            if (string.Equals(Choices[i], value.Trim(), StringComparison.OrdinalIgnoreCase)) return i;
        return -1;
    }
}
