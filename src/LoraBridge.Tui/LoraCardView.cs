using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace LoraBridge.Tui;

// TextView: see MainWindow.
#pragma warning disable CS0618

/// <summary>
/// The selected LoRA's card: the preview thumbnail (a <see cref="PreviewView"/>, the image panel's renderer) on the
/// left, the facts on the right. All content comes from a <see cref="LoraCardModel"/>.
/// </summary>
public sealed class LoraCardView : View
{
    private readonly LoraCardModel _model;

    /// <summary>Creates the view over <paramref name="model"/>.</summary>
    public LoraCardView(LoraCardModel model)
    {
        _model = model;
        Thumbnail = new PreviewView(model.Thumbnail) { X = 0, Y = 0, Width = Dim.Func(_ => ThumbnailColumns), Height = Dim.Fill() };
        Info = new TextView
        {
            X = Pos.Func(_ => ThumbnailColumns > 0 ? ThumbnailColumns + 1 : 0), Y = 0, Width = Dim.Fill(), Height = Dim.Fill(),
            ReadOnly = true, WordWrap = true, TabKeyAddsTab = false, CanFocus = false, Text = model.Text,
        };
        Add(Thumbnail, Info);
        model.Changed += () =>
        {
            Info.Text = model.Text;
            // A picture of another shape (or none) moves the text.
            SetNeedsLayout();
        };
    }

    /// <summary>The thumbnail.</summary>
    public PreviewView Thumbnail { get; }

    /// <summary>The card's text.</summary>
    public TextView Info { get; }

    private int ThumbnailColumns =>
        _model.Thumbnail.Image is { } image ? PanelLayout.ThumbnailColumns(Viewport.Width, Viewport.Height, image.Width, image.Height) : 0;
}
