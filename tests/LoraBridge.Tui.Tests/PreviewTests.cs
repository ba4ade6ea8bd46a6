using System.Drawing;
using LoraBridge.Engine;
using SkiaSharp;
using Terminal.Gui.App;
using Terminal.Gui.Drawing;
using Terminal.Gui.Drivers;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace LoraBridge.Tui.Tests;

// The image panel: half-block rendering of a real PNG (cell colours checked on Terminal.Gui's ANSI driver, headless),
// raster graphics when the driver reports them, the history selection, and live previews during a job.
#pragma warning disable CS0618 // TextView: see MainWindow
public class PreviewTests
{
    // 4 x 4: row y, column x has colour (x * 60, y * 60, 200 - x * 40 - y * 10)
    private static Rgb Expected(int x, int y) => new((byte)(x * 60), (byte)(y * 60), (byte)(200 - x * 40 - y * 10));

    private static string WritePng(string folder, string name, int width = 4, int height = 4, Func<int, int, Rgb>? colour = null)
    {
        colour ??= Expected;
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var c = colour(x, y);
                bitmap.SetPixel(x, y, new SKColor(c.R, c.G, c.B));
            }
        var path = Path.Combine(folder, name);
        Directory.CreateDirectory(folder);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void FitKeepsEveryPixelWhenThePanelMatchesAndAveragesWhenShrinking()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-preview-");
        try
        {
            var image = RgbImage.Load(WritePng(dir.FullName, "a.png"));
            var frame = HalfBlockFrame.Fit(image, 4, 2)!;
            Assert.Equal((0, 4, 2), (frame.Left, frame.Columns, frame.Rows));
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 4; x++)
                {
                    Assert.Equal(Expected(x, 2 * y), frame.Upper[x, y]);
                    Assert.Equal(Expected(x, 2 * y + 1), frame.Lower[x, y]);
                }
            // A wider panel: the square picture keeps its aspect (4 cells x 2 rows) and is centred.
            var wide = HalfBlockFrame.Fit(image, 10, 2)!;
            Assert.Equal((3, 4, 2), (wide.Left, wide.Columns, wide.Rows));
            // Shrunk to one cell: the upper half is the mean of the top two rows, the lower of the bottom two.
            var one = HalfBlockFrame.Fit(image, 1, 1)!;
            Assert.Equal((0, 1, 1), (one.Left, one.Columns, one.Rows));
            Assert.Equal(new Rgb(90, 30, 135), one.Upper[0, 0]);    // x mean 90, y mean 30, b: 200 - 60 - 5
            Assert.Equal(new Rgb(90, 150, 115), one.Lower[0, 0]);
            Assert.Null(HalfBlockFrame.Fit(image, 0, 5));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void TheViewDrawsUpperHalfBlocksWithThePixelColours()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-preview-");
        try
        {
            var model = new PreviewModel();
            Assert.True(model.ShowFile(WritePng(dir.FullName, "a.png"), "a cat\nSteps: 4, Seed: 9"));
            using IApplication app = Application.Create();
            app.Init(DriverRegistry.Names.ANSI);
            var top = new Runnable { Width = 20, Height = 6 };
            var view = new PreviewView(model) { X = 2, Y = 1, Width = 4, Height = 2, UseRasterGraphics = false };
            top.Add(view);
            app.Begin(top);
            app.LayoutAndDraw();
            Assert.False(view.IsUsingRasterGraphics);
            var contents = app.Driver!.Contents!;
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 4; x++)
                {
                    var cell = contents[1 + y, 2 + x];
                    Assert.Equal("▀", cell.Grapheme);
                    var (fg, bg) = (cell.Attribute!.Value.Foreground, cell.Attribute.Value.Background);
                    Assert.Equal(Expected(x, 2 * y), new Rgb(fg.R, fg.G, fg.B));
                    Assert.Equal(Expected(x, 2 * y + 1), new Rgb(bg.R, bg.G, bg.B));
                }
            Assert.NotEqual("▀", contents[1, 6].Grapheme);   // nothing drawn beside the picture
            top.Dispose();
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void SixelOrKittyIsUsedWhenTheDriverReportsItUnlessHalfBlocksAreForced()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-preview-");
        try
        {
            var model = new PreviewModel();
            model.ShowFile(WritePng(dir.FullName, "a.png"), "");
            using IApplication app = Application.Create();
            app.Init(DriverRegistry.Names.ANSI);
            var top = new Runnable { Width = 20, Height = 6 };
            var view = new PreviewView(model) { X = 0, Y = 0, Width = 4, Height = 2 };
            top.Add(view);
            app.Begin(top);
            app.Driver!.SetSixelSupport(new SixelSupportResult { IsSupported = true });
            view.UseRasterGraphics = true;
            Assert.True(view.IsUsingRasterGraphics);
            view.UseRasterGraphics = false;
            Assert.False(view.IsUsingRasterGraphics);
            top.Dispose();
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void ColoursForTheRasterViewAreIndexedXThenY()
    {
        var image = new RgbImage(2, 1, [1, 2, 3, 4, 5, 6]);
        var colors = PreviewView.ToColors(image);
        Assert.Equal((2, 1), (colors.GetLength(0), colors.GetLength(1)));
        Assert.Equal((4, 5, 6), (colors[1, 0].R, colors[1, 0].G, colors[1, 0].B));
        Assert.Throws<ArgumentException>(() => new RgbImage(2, 2, new byte[3]));
    }

    [Fact]
    public void AnUnreadableFileLeavesNoPictureAndNamesTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-preview-");
        try
        {
            var bad = Path.Combine(dir.FullName, "broken.png");
            File.WriteAllText(bad, "not a png");
            var model = new PreviewModel();
            Assert.False(model.ShowFile(bad, "x"));
            Assert.Null(model.Image);
            Assert.Contains(bad, model.Caption);
            Assert.Equal("not a png", File.ReadAllText(bad));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void SelectingAHistoryRowShowsItsImageAndInfotext()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-preview-");
        try
        {
            var red = WritePng(dir.FullName, "00000-1.png", 2, 2, (_, _) => new Rgb(255, 0, 0));
            File.SetLastWriteTimeUtc(red, DateTime.UtcNow.AddMinutes(-5));
            var blue = WritePng(dir.FullName, "00001-2.png", 2, 2, (_, _) => new Rgb(0, 0, 255));
            // Give both PNGs their infotext the way the engine writes it (a tEXt "parameters" chunk).
            AddParameters(red, "a red square\nSteps: 4, Seed: 1, Size: 2x2");
            File.SetLastWriteTimeUtc(red, DateTime.UtcNow.AddMinutes(-5));
            AddParameters(blue, "a blue square\nSteps: 4, Seed: 2, Size: 2x2");
            var vm = new GeneratorViewModel(dir.FullName, "64x64");
            using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a());
            w.Frame = new Rectangle(0, 0, 160, 48);
            w.Layout();
            Assert.Equal([blue, red], w.HistoryItems.Select(h => h.Path));
            Assert.Equal(blue, vm.Preview.Path);             // a new session opens on the newest image
            Assert.Equal(new Rgb(0, 0, 255), vm.Preview.Image![0, 0]);
            w.FileList.SelectedItem = 1;
            w.ShowSelectedHistory();
            Assert.Equal(red, vm.Preview.Path);
            Assert.Equal(new Rgb(255, 0, 0), vm.Preview.Image![1, 1]);
            Assert.StartsWith("a red square\n", w.Caption.Text);
            Assert.Contains("Seed: 1", w.Caption.Text);
            Assert.True(w.Preview.Frame.Width > 20 && w.Preview.Frame.Height > 10, $"image panel too small at 160x48: {w.Preview.Frame}");
        }
        finally { dir.Delete(true); }
    }

    internal static void AddParameters(string png, string parameters)
    {
        // Insert a tEXt chunk after IHDR (8-byte signature + 25-byte IHDR chunk); readers ignore the CRC here.
        var bytes = File.ReadAllBytes(png);
        var text = System.Text.Encoding.Latin1.GetBytes("parameters\0" + parameters);
        var chunk = new byte[12 + text.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)text.Length);
        "tEXt"u8.CopyTo(chunk.AsSpan(4));
        text.CopyTo(chunk, 8);
        var crc = Crc32(chunk.AsSpan(4, 4 + text.Length));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + text.Length), crc);
        File.WriteAllBytes(png, [.. bytes.AsSpan(0, 33), .. chunk, .. bytes.AsSpan(33)]);
    }

    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    [Fact]
    public async Task LivePreviewsKeepOneRequestInFlightAndTheFinalImageReplacesThem()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-preview-");
        try
        {
            var final = WritePng(dir.FullName, "00000-7.png");
            var vm = new GeneratorViewModel(dir.FullName, "64x64") { StepsText = "3" };
            var pending = new TaskCompletionSource<LiveFrame?>();
            int requests = 0;
            var seenLive = new List<string>();
            vm.Preview.Changed += () => { if (vm.Preview.IsLive) seenLive.Add(vm.Preview.Caption); };
            Generator generator = (request, progress, ct) =>
            {
                var live = new LivePreviews(progress, (IPreviewSink)progress, _ => { requests++; return pending.Task; }, ct);
                for (int s = 1; s <= 3; s++) live.Report(new GenerationProgress(0, 1, s, 3, 1, TimeSpan.Zero));
                Assert.Equal(1, requests);                    // steps 2 and 3 found a preview in flight
                pending.SetResult(new LiveFrame(new RgbImage(1, 1, [10, 20, 30]), false, null));
                Assert.Equal(1, live.Requested);
                return Task.FromResult(new JobResult([new GeneratedImage(final, 7, "a cat\nSteps: 3, Seed: 7")], []));
            };
            // The view model posts to the UI thread; here the test is that thread, so post runs at once.
            await vm.GenerateAsync(generator, a => a());
            SpinWait.SpinUntil(() => vm.State == JobState.Idle, 5000);
            Assert.Equal(["live preview, step 1/3 (A1111 \"Approx cheap\": approximate colours at 1/8 size)"], seenLive);
            Assert.False(vm.Preview.IsLive);
            Assert.Equal(final, vm.Preview.Path);
            Assert.Equal(Expected(3, 3), vm.Preview.Image![3, 3]);
        }
        finally { dir.Delete(true); }
    }
}

internal static class PreviewTestsAccess
{
    internal static void AddParameters(string png, string parameters) => PreviewTests.AddParameters(png, parameters);
}

// In a running application (ANSI driver, headless): F3 goes to the History, ↓ moves and shows each image.
public class HistoryKeysTests
{
    [Fact]
    public void DownMovesThroughTheHistoryAndShowsEachImage()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-probe-");
        try
        {
            foreach (var (name, age) in new[] { ("00000-1.png", -5), ("00001-2.png", 0) })
            {
                using var bitmap = new SkiaSharp.SKBitmap(2, 2);
                var p = Path.Combine(dir.FullName, name);
                using (var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100)) File.WriteAllBytes(p, data.ToArray());
                PreviewTestsAccess.AddParameters(p, $"<lora:demo_style:0.8> {name}\nSteps: 4, Seed: 1");
                File.SetLastWriteTimeUtc(p, DateTime.UtcNow.AddMinutes(age));
            }
            var vm = new GeneratorViewModel(dir.FullName, "64x64");
            using Terminal.Gui.App.IApplication app = Terminal.Gui.App.Application.Create();
            app.Init(Terminal.Gui.Drivers.DriverRegistry.Names.ANSI);
            var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a());
            app.Begin(w);
            app.LayoutAndDraw();
            Assert.True(w.HandleKey(Terminal.Gui.Input.Key.F3, () => { }));
            Assert.True(w.FileList.HasFocus);
            app.Keyboard.RaiseKeyDownEvent(Terminal.Gui.Input.Key.CursorDown);
            app.Keyboard.RaiseKeyDownEvent(Terminal.Gui.Input.Key.CursorDown);
            Assert.Equal(1, w.FileList.SelectedItem);
            Assert.EndsWith("00000-1.png", vm.Preview.Path);
            // The status line shows the row's parameters with every character (no '_' eaten as a hot-key marker).
            app.LayoutAndDraw();
            var r = w.Status.FrameToScreen();
            var shown = string.Join("\n", Enumerable.Range(r.Y, r.Height).Select(y =>
                string.Concat(Enumerable.Range(r.X, r.Width).Select(x => app.Driver!.Contents![y, x].Grapheme))));
            Assert.Contains("<lora:demo_style:0.8>", shown);
            w.Dispose();
        }
        finally { dir.Delete(true); }
    }
}
