using System.Drawing;
using LoraBridge.Models;
using SkiaSharp;
using Terminal.Gui.App;
using Terminal.Gui.Drivers;
using Terminal.Gui.Input;

namespace LoraBridge.Tui.Tests;

// The LoRA card: the selected LoRA's preview thumbnail drawn by the image panel's renderer (cells checked on
// Terminal.Gui's ANSI driver, headless), the card's text for missing and corrupt previews, and the thumbnail cache.
#pragma warning disable CS0618 // TextView: see MainWindow
public sealed class LoraPreviewCardTests : IDisposable
{
    private static readonly Rgb Red = new(220, 20, 30), Green = new(10, 200, 40), Blue = new(20, 40, 210), Yellow = new(240, 230, 10);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("lorabridge-card-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>A picture in four solid quadrants: red top left, green top right, blue bottom left, yellow bottom right.</summary>
    private string WriteQuadrants(string name, int width, int height)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var c = y < height / 2 ? (x < width / 2 ? Red : Green) : (x < width / 2 ? Blue : Yellow);
                bitmap.SetPixel(x, y, new SKColor(c.R, c.G, c.B));
            }
        var path = Path.Combine(_dir.FullName, name);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    private static LoraCard Card(string alias, string? preview) =>
        new(alias, 0.8, "oil painting") { Name = alias + "_v2", NetworkType = "lora", Rank = "8", Family = BaseFamily.SD1, PreviewPath = preview };

    /// <summary>The window on an 80×24 ANSI test screen with the LoRA panel opened (Ctrl+L) and the first card's preview loaded.</summary>
    private static (IApplication App, MainWindow Window) Show(params LoraCard[] cards)
    {
        IApplication app = Application.Create();
        app.Init(DriverRegistry.Names.ANSI);
        app.Driver!.SetScreenSize(80, 24);
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => cards, a => a());
        w.CardView.Thumbnail.UseRasterGraphics = false;
        app.Begin(w);
        Assert.True(w.HandleKey(Key.L.WithCtrl, () => { }));
        Settle(w);
        app.LayoutAndDraw();
        // Laying out may select the row again (a second Show, with its own decode when the first had not finished):
        // wait for that one too, so the screen shows the settled card whatever the machine's speed.
        while (!w.Card.Loading.IsCompleted)
        {
            Settle(w);
            app.LayoutAndDraw();
        }
        return (app, w);
    }

    // Blocks instead of awaiting: Terminal.Gui's Init installs its main loop's SynchronizationContext on this thread, and
    // these tests never run that loop, so an await that does not complete at once would never resume (a hang, seen when
    // the decode was slower than the test). The card's own continuation runs on the thread pool (post = a => a()).
    private static void Settle(MainWindow w) =>
        Assert.True(w.Card.Loading.Wait(TimeSpan.FromSeconds(60)), "the preview thumbnail was not decoded within 60 s");

    private static (Rgb Upper, Rgb Lower) CellColours(IApplication app, int x, int y)
    {
        var cell = app.Driver!.Contents![y, x];
        Assert.Equal("▀", cell.Grapheme);
        var (fg, bg) = (cell.Attribute!.Value.Foreground, cell.Attribute.Value.Background);
        return (new Rgb(fg.R, fg.G, fg.B), new Rgb(bg.R, bg.G, bg.B));
    }

    private static List<int> HalfBlockColumns(IApplication app, Rectangle area, int y) =>
        [.. Enumerable.Range(area.X, area.Width).Where(x => app.Driver!.Contents![y, x].Grapheme == "▀")];

    private static string ScreenText(IApplication app, Rectangle area) =>
        string.Join("\n", Enumerable.Range(area.Y, area.Height).Select(y =>
            string.Concat(Enumerable.Range(area.X, area.Width).Select(x => app.Driver!.Contents![y, x].Grapheme))));

    [Fact]
    public void TheSelectedLorasPreviewIsDrawnInHalfBlocksWithItsColours()
    {
        var preview = WriteQuadrants("painted.preview.png", 64, 64);
        var (app, w) = Show(Card("painted", preview), Card("plain", null));
        using (app)
        using (w)
        {
            Assert.Equal("", w.Card.PreviewStatus);
            Assert.Equal(64, w.Card.Thumbnail.Image!.Width);   // small already: not resized
            var area = w.CardView.Thumbnail.FrameToScreen();
            Assert.True(area.Height >= 4 && area.Width >= 8, $"thumbnail area {area}");
            // The square picture fills the thumbnail's height and is as wide (two pixels per cell down).
            var top = HalfBlockColumns(app, area, area.Y);
            var bottom = HalfBlockColumns(app, area, area.Bottom - 1);
            Assert.Equal(area.Height * 2, top.Count);
            Assert.Equal(top, bottom);
            // Corner cells lie inside one quadrant each: exact colours, upper and lower half alike.
            Assert.Equal((Red, Red), CellColours(app, top[0], area.Y));
            Assert.Equal((Green, Green), CellColours(app, top[^1], area.Y));
            Assert.Equal((Blue, Blue), CellColours(app, top[0], area.Bottom - 1));
            Assert.Equal((Yellow, Yellow), CellColours(app, top[^1], area.Bottom - 1));
            // The facts stand beside the picture.
            var text = ScreenText(app, w.CardView.Info.FrameToScreen());
            Assert.Contains("painted", text);
            Assert.Contains("rank 8", w.Card.Text);
            Assert.Contains("Enter inserts <lora:painted:0.8> oil painting", w.Card.Text);
            Assert.Contains("(file painted_v2)", w.Card.Text);
        }
    }

    [Fact]
    public void ALoraWithoutPreviewSaysSoAndDrawsNoPicture()
    {
        var (app, w) = Show(Card("plain", null));
        using (app)
        using (w)
        {
            Assert.Null(w.Card.Thumbnail.Image);
            Assert.Contains("no preview image", w.Card.Text);
            Assert.Contains("plain_v2.preview.png", w.Card.Text);
            var card = w.CardView.FrameToScreen();
            Assert.Empty(Enumerable.Range(card.Y, card.Height).SelectMany(y => HalfBlockColumns(app, card, y)));
            // Without a picture the text takes the card's whole width, starting at its left edge.
            Assert.Equal(card.X, w.CardView.Info.FrameToScreen().X);
            Assert.StartsWith("plain", ScreenText(app, card));
        }
    }

    [Fact]
    public void ACorruptPreviewGivesAClearMessageInTheCard()
    {
        var broken = Path.Combine(_dir.FullName, "broken.preview.png");
        File.WriteAllBytes(broken, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3, 4, 5]);
        var (app, w) = Show(Card("broken", broken));
        using (app)
        using (w)
        {
            Assert.Null(w.Card.Thumbnail.Image);
            Assert.Equal($"cannot show preview {broken}: not a readable image", w.Card.PreviewStatus);
            Assert.EndsWith(w.Card.PreviewStatus, w.Card.Text);
            Assert.Equal(w.Card.Text, w.CardView.Info.Text);
            var card = w.CardView.FrameToScreen();
            Assert.Empty(Enumerable.Range(card.Y, card.Height).SelectMany(y => HalfBlockColumns(app, card, y)));
            Assert.Equal([File.ReadAllBytes(broken)], [[0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3, 4, 5]]);   // only read
        }
    }

    [Fact]
    public async Task ThumbnailsAreDecodedSmallOnceAndAgainWhenTheFileChanges()
    {
        var big = WriteQuadrants("big.png", 1600, 800);
        var cache = new ThumbnailCache(maxSide: 160);
        var first = await cache.LoadAsync(big);
        Assert.Null(first.Error);
        Assert.Equal((160, 80), (first.Image!.Width, first.Image.Height));
        // Shrunk by averaging: the quadrants keep their colours away from the edges between them.
        Assert.Equal(Red, first.Image[10, 10]);
        Assert.Equal(Green, first.Image[150, 10]);
        Assert.Equal(Blue, first.Image[10, 70]);
        Assert.Equal(Yellow, first.Image[150, 70]);
        // A second look is the same result without decoding.
        Assert.Same(first, await cache.LoadAsync(big));
        Assert.Equal(1, cache.Decodes);
        // A new file at the same path (another time stamp) is decoded again.
        WriteQuadrants("big.png", 40, 20);
        File.SetLastWriteTimeUtc(big, DateTime.UtcNow.AddMinutes(1));
        var second = await cache.LoadAsync(big);
        Assert.Equal((40, 20), (second.Image!.Width, second.Image.Height));
        Assert.Equal(2, cache.Decodes);
        // A file that is gone is a message, not an exception.
        File.Delete(big);
        Assert.Equal($"preview {big} is gone", (await cache.LoadAsync(big)).Error);
    }

    [Fact]
    public async Task AThumbnailThatArrivesAfterTheSelectionMovedOnIsDropped()
    {
        var preview = WriteQuadrants("slow.png", 32, 32);
        var queued = new List<Action>();
        var decodeMayStart = new TaskCompletionSource();
        // Decodes wait for the test; the UI thread runs nothing until told.
        var cache = new ThumbnailCache(run: decode => decodeMayStart.Task.ContinueWith(_ => decode(), TaskScheduler.Default));
        var model = new LoraCardModel(cache, queued.Add);
        model.Show(Card("slow", preview), BaseFamily.SD1);
        Assert.Contains(LoraCardModel.LoadingPreview, model.Text);
        Assert.Null(model.Thumbnail.Image);
        var loading = model.Loading;
        model.Show(Card("plain", null), BaseFamily.SD1);
        decodeMayStart.SetResult();
        await loading;
        Assert.Single(queued);
        queued[0]();
        Assert.Equal("plain", model.Card!.Alias);
        Assert.Null(model.Thumbnail.Image);
        Assert.Contains("no preview image", model.Text);
        // Back on the first card: decoded already, shown at once.
        model.Show(Card("slow", preview), BaseFamily.SDXL);
        Assert.True(model.Loading.IsCompleted);
        Assert.Equal(32, model.Thumbnail.Image!.Width);
        Assert.Contains("! made for SD1, checkpoint is SDXL", model.Text);
    }

    [Fact]
    public async Task ClickingAChoiceOpensItsListAndClickingAValuePicksIt()
    {
        using IApplication app = Application.Create();
        app.Init(DriverRegistry.Names.ANSI);
        app.Driver!.SetScreenSize(80, 24);
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a());
        app.Begin(w);
        app.LayoutAndDraw();
        w.PromptEditor.SetFocus();
        var input = app.GetInputInjector();
        void Click(Point p)
        {
            input.InjectMouse(new Mouse { ScreenPosition = p, Flags = MouseFlags.LeftButtonPressed });
            input.InjectMouse(new Mouse { ScreenPosition = p, Flags = MouseFlags.LeftButtonReleased });
            input.ProcessQueue();
            app.LayoutAndDraw();
        }
        foreach (var (field, pick) in new[] { (w.SamplerField, "DDIM"), (w.ScheduleField, "Karras") })
        {
            var at = field.FrameToScreen();
            Click(new Point(at.X + 1, at.Y));
            Assert.True(field.HasFocus);
            // The list opens under the field with every choice; the user clicks the one wanted.
            var rows = Enumerable.Range(at.Y + 1, 6).Where(y => ScreenText(app, new Rectangle(at.X, y, 14, 1)).Trim() == pick).ToList();
            Assert.True(rows.Count == 1, $"'{pick}' not listed under {field.GetType().Name} at {at}:\n{ScreenText(app, new Rectangle(at.X, at.Y, 20, 7))}");
            Click(new Point(at.X + 1, rows[0]));
            Assert.Equal(pick, field.Text);
        }
        Assert.Equal(("DDIM", "Karras"), (vm.Sampler, vm.Schedule));
        // The list closed after the pick: the rows under the field show the form again.
        Assert.DoesNotContain("Euler a", ScreenText(app, new Rectangle(w.ScheduleField.FrameToScreen().X, w.ScheduleField.FrameToScreen().Y + 1, 14, 4)));
        await Task.CompletedTask;
    }
}
