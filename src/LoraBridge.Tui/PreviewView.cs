using System.Text;
using Terminal.Gui.Drawing;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;
using Attribute = Terminal.Gui.Drawing.Attribute;
using Color = Terminal.Gui.Drawing.Color;

namespace LoraBridge.Tui;

/// <summary>
/// Shows a <see cref="PreviewModel"/>'s picture: through Terminal.Gui's <see cref="ImageView"/> with Kitty or Sixel
/// graphics when the terminal reports them (and <see cref="UseRasterGraphics"/> is on), else as coloured half blocks
/// (<see cref="HalfBlockFrame"/>), which every colour terminal shows, tmux included.
/// </summary>
public sealed class PreviewView : View
{
    private readonly PreviewModel _model;
    private readonly ImageView _raster;
    private int _rasterVersion = -1;

    /// <summary>Creates the view over <paramref name="model"/>; it redraws when the model changes.</summary>
    public PreviewView(PreviewModel model)
    {
        _model = model;
        _raster = new ImageView { X = 0, Y = 0, Width = Dim.Fill(), Height = Dim.Fill(), Visible = false, CanFocus = false };
        Add(_raster);
        model.Changed += SetNeedsDraw;
    }

    /// <summary>
    /// Use Kitty or Sixel graphics when the terminal has them (default on). <c>LORABRIDGE_TUI_GRAPHICS=halfblock</c>
    /// turns it off for terminals that claim support but draw badly.
    /// </summary>
    public bool UseRasterGraphics { get; set; } =
        !string.Equals(Environment.GetEnvironmentVariable("LORABRIDGE_TUI_GRAPHICS"), "halfblock", StringComparison.OrdinalIgnoreCase);

    /// <summary>True when the picture is drawn with Kitty or Sixel graphics instead of half blocks.</summary>
    public bool IsUsingRasterGraphics =>
        UseRasterGraphics && _model.Image is not null
        && (App?.Driver?.KittyGraphicsSupport?.IsSupported == true || App?.Driver?.SixelSupport?.IsSupported == true);

    /// <inheritdoc/>
    protected override bool OnDrawingContent(DrawContext? context)
    {
        var raster = IsUsingRasterGraphics;
        _raster.Visible = raster;
        if (raster)
        {
            if (_rasterVersion != _model.Version)
            {
                _raster.Image = ToColors(_model.Image!);
                _rasterVersion = _model.Version;
            }
            return true;
        }
        if (_model.Frame(Viewport.Width, Viewport.Height) is not { } frame) return true;
        for (int y = 0; y < frame.Rows; y++)
        {
            for (int x = 0; x < frame.Columns; x++)
            {
                var (u, l) = (frame.Upper[x, y], frame.Lower[x, y]);
                SetAttribute(new Attribute(new Color(u.R, u.G, u.B), new Color(l.R, l.G, l.B)));
                AddRune(frame.Left + x, y, new Rune(HalfBlockFrame.Glyph));
            }
        }
        var screen = ViewportToScreen();
        context?.AddDrawnRectangle(screen with { X = screen.X + frame.Left, Width = frame.Columns, Height = frame.Rows });
        return true;
    }

    /// <summary>The picture as <see cref="ImageView.Image"/> wants it: [x, y].</summary>
    public static Color[,] ToColors(RgbImage image)
    {
        var colors = new Color[image.Width, image.Height];
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                var p = image[x, y];
                colors[x, y] = new Color(p.R, p.G, p.B);
            }
        return colors;
    }
}
