using System.Drawing;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;

namespace LoraBridge.Tui.Tests;

// Layout at the smallest target terminal and a large one, F1 help, choices, seed buttons and saved settings.
#pragma warning disable CS0618 // TextView: see MainWindow
public class LayoutAndSettingsTests
{
    private static (MainWindow Window, GeneratorViewModel Vm) Build(int width, int height, GeneratorViewModel? vm = null)
    {
        vm ??= new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        var window = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([new Engine.GeneratedImage("/tmp/out/1.png", 1234, "")], [])),
            _ => ["demo_style"], a => a());
        window.Frame = new Rectangle(0, 0, width, height);
        window.Layout();
        return (window, vm);
    }

    private static View[] SettingsOf(MainWindow w) =>
    [
        w.PromptEditor, w.NegativeField, w.StepsField, w.CfgField, w.SizeField, w.SeedField, w.RandomSeedButton, w.ReuseSeedButton,
        w.BatchCountField, w.BatchSizeField, w.ClipSkipField, w.SamplerField, w.ScheduleField, w.CheckpointField, w.HiresField, w.HiresScaleField,
        w.HiresStepsField, w.HiresDenoiseField, w.GenerateButton, w.CancelButton, w.Status, w.PlanView, w.LoraSearch, w.FileList,
        w.Preview, w.Caption,
    ];

    [Theory]
    [InlineData(80, 24)]
    [InlineData(200, 60)]
    [InlineData(160, 48)]
    public void EverySettingIsOnScreenAndUnoverlapped(int width, int height)
    {
        var (w, _) = Build(width, height);
        using var _ = w;
        var screen = new Rectangle(0, 0, width, height);
        var frames = new List<(string, Rectangle)>();
        foreach (var v in SettingsOf(w))
        {
            var r = v.FrameToScreen();
            Assert.True(r.Width > 0 && r.Height > 0, $"{v.GetType().Name} '{v.Text}' has no room at {width}x{height}: {r}");
            Assert.True(screen.Contains(r), $"{v.GetType().Name} '{v.Text}' at {r} is outside {width}x{height}");
            frames.Add((v.GetType().Name + ":" + v.Text, r));
        }
        // Fields of one row must not cover each other.
        for (int i = 0; i < frames.Count; i++)
            for (int j = i + 1; j < frames.Count; j++)
                if (!ReferenceEquals(SettingsOf(w)[i].SuperView, SettingsOf(w)[j]) && !ReferenceEquals(SettingsOf(w)[j].SuperView, SettingsOf(w)[i]))
                    Assert.False(frames[i].Item2.IntersectsWith(frames[j].Item2), $"{frames[i]} overlaps {frames[j]} at {width}x{height}");
        // The fields take their full width even at 80 columns.
        Assert.Equal(10, w.SamplerField.FrameToScreen().Width);
        Assert.Equal(12, w.SeedField.FrameToScreen().Width);
        // The LoRA list and card are reachable: with the focus in the list they are on screen, beside the form.
        w.HandleKey(Key.L.WithCtrl, () => { });
        w.Layout();
        foreach (var v in new View[] { w.LoraList, w.CardView })
        {
            var r = v.FrameToScreen();
            Assert.True(r.Width > 0 && r.Height > 0 && screen.Contains(r), $"{v.GetType().Name} at {r} at {width}x{height}");
            Assert.True(r.X >= w.NegativeField.FrameToScreen().Right, $"{v.GetType().Name} at {r} covers the form");
        }
    }

    [Fact]
    public void ResizeRelaysOutAndRewrapsThePlan()
    {
        var (w, vm) = Build(160, 48);
        using var _ = w;
        w.PromptEditor.Text = string.Join(" ", Enumerable.Repeat("lighthouse", 30)) + " [a:b:0.5]";
        var wide = w.PlanView.Text.Split('\n').Max(l => l.TrimEnd('\r').Length);
        w.Frame = new Rectangle(0, 0, 80, 24);
        w.Layout();
        var narrowWidth = w.PlanView.Viewport.Width;
        Assert.All(w.PlanView.Text.Split('\n'), l => Assert.True(l.TrimEnd('\r').Length <= narrowWidth, $"'{l}' wider than {narrowWidth}"));
        Assert.True(wide > narrowWidth);
        Assert.True(screenContains(w.ScheduleField, 80, 24));
        w.Frame = new Rectangle(0, 0, 160, 48);
        w.Layout();
        Assert.Equal(wide, w.PlanView.Text.Split('\n').Max(l => l.TrimEnd('\r').Length));
        static bool screenContains(View v, int width, int height) => new Rectangle(0, 0, width, height).Contains(v.FrameToScreen());
    }

    [Fact]
    public void AtEightyColumnsThePlanKeepsItsLoraColumnOnScreen()
    {
        var (w, _) = Build(80, 24);
        using var _ = w;
        w.PromptEditor.Text = "a lighthouse on a cliff at sunset, [stormy:calm:0.5] sea <lora:demo_style:0.8>";
        var width = w.PlanView.Viewport.Width;
        var lines = w.PlanView.Text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.All(lines, l => Assert.True(l.Length <= width, $"'{l}' wider than {width}"));
        Assert.Equal(2, lines.Count(l => l.Contains("demo_style 0.8/0.8", StringComparison.Ordinal)));
    }

    [Fact]
    public void F1ShowsHelpListingEveryKey()
    {
        var (w, vm) = Build(80, 24);
        using var _ = w;
        Assert.False(w.HelpFrame.Visible);
        Assert.True(w.HandleKey(Key.F1, () => { }));
        Assert.True(w.HelpFrame.Visible);
        foreach (var key in new[] { "F1", "F3", "F6", "Ctrl+G", "Esc", "Ctrl+L", "Ctrl+Q", "Tab", "Alt+M", "Alt+R" })
            Assert.Contains(key, w.HelpView.Text);
        // Esc closes the help first; it does not cancel anything then.
        Assert.True(w.HandleKey(Key.Esc, () => { }));
        Assert.False(w.HelpFrame.Visible);
        Assert.True(w.HandleKey(Key.F1, () => { }));
        Assert.True(w.HandleKey(Key.F1, () => { }));
        Assert.False(w.HelpFrame.Visible);
    }

    [Fact]
    public void ChoicesStepAndOnlyHoldEngineValues()
    {
        var (w, vm) = Build(80, 24);
        using var _ = w;
        Assert.Equal("Euler a", w.SamplerField.Text);
        Assert.True(w.SamplerField.NewKeyDownEvent(Key.CursorRight));
        Assert.Equal("Euler", vm.Sampler);
        Assert.True(w.SamplerField.NewKeyDownEvent(Key.CursorLeft));
        Assert.True(w.SamplerField.NewKeyDownEvent(Key.CursorLeft));
        Assert.Equal("DDIM", vm.Sampler);   // wraps around
        w.ScheduleField.Step(2);
        Assert.Equal("Karras", vm.Schedule);
        Assert.False(w.ScheduleField.Select("Linear"));
        Assert.Equal("Automatic", w.ScheduleField.Text);
        Assert.True(w.SamplerField.NewKeyDownEvent(Key.X));   // typing is refused (read-only)
        Assert.Equal("DDIM", w.SamplerField.Text);
    }

    [Fact]
    public async Task SettingsReachTheRequestAndSeedButtonsWork()
    {
        var (w, vm) = Build(80, 24);
        using var _ = w;
        w.BatchCountField.Text = "3";
        w.BatchSizeField.Text = "2";
        w.ClipSkipField.Text = "2";
        w.ScheduleField.Select("Exponential");
        var (request, errors) = vm.BuildRequest();
        Assert.Empty(errors);
        Assert.Equal((3, 2, 2, "Exponential"), (request!.BatchCount, request.BatchSize, request.ClipSkip, request.Schedule));
        w.ClipSkipField.Text = "0";
        w.BatchSizeField.Text = "x";
        Assert.Equal(["batch size: 'x' is not a whole number from 1 to 8", "clip skip: '0' is not a whole number from 1 to 12"], vm.BuildRequest().Errors);
        // ♻ with no image yet changes nothing; after a job it takes the image's seed; 🎲 goes back to -1.
        w.SeedField.Text = "7";
        w.ReuseSeedButton.InvokeCommand(Command.Accept);
        Assert.Equal("7", w.SeedField.Text);
        w.ClipSkipField.Text = "1";
        w.BatchSizeField.Text = "1";
        w.StartGeneration();
        Assert.True(SpinWait.SpinUntil(() => vm.Images.Count == 1, TimeSpan.FromSeconds(10)));
        w.ReuseSeedButton.InvokeCommand(Command.Accept);
        Assert.Equal("1234", w.SeedField.Text);
        Assert.Equal("1234", vm.SeedText);
        w.RandomSeedButton.InvokeCommand(Command.Accept);
        Assert.Equal("-1", w.SeedField.Text);
        await Task.CompletedTask;
    }

    [Fact]
    public void SettingsRoundTripThroughTheDataFolderAtomically()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-tui-");
        try
        {
            var path = Path.Combine(dir.FullName, SettingsStore.FileName);
            Assert.Null(SettingsStore.Load(path, out var none));
            Assert.Null(none);
            var vm = new GeneratorViewModel("/tmp/out", "512x512")
            {
                Prompt = "a cat <lora:demo_style:0.6>", NegativePrompt = "blurry", StepsText = "12", CfgText = "4.5", SeedText = "99",
                SizeText = "640x448", Sampler = "DDIM", Schedule = "Karras", BatchCountText = "2", BatchSizeText = "3", ClipSkipText = "2",
            };
            SettingsStore.Save(path, vm.ToSettings());
            Assert.Equal([SettingsStore.FileName], dir.GetFiles().Select(f => f.Name));   // no temporary file left
            var restored = new GeneratorViewModel("/tmp/out", "512x512");
            restored.Apply(SettingsStore.Load(path, out _)!);
            Assert.Equal(vm.ToSettings(), restored.ToSettings());
            // A new window shows the restored settings.
            var (w, _) = Build(80, 24, restored);
            using (w)
            {
                Assert.Equal("DDIM", w.SamplerField.Text);
                Assert.Equal("Karras", w.ScheduleField.Text);
                Assert.Equal("640x448", w.SizeField.Text);
                Assert.Equal("2", w.ClipSkipField.Text);
            }
            // A damaged file is reported with its path and leaves the defaults; it is not modified.
            File.WriteAllText(path, "{ not json");
            Assert.Null(SettingsStore.Load(path, out var problem));
            Assert.Contains(path, problem);
            Assert.Equal("{ not json", File.ReadAllText(path));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void PreparationSaysItIsLoading()
    {
        var vm = new GeneratorViewModel("/tmp/out");
        var release = new TaskCompletionSource<string>();
        _ = vm.PrepareAsync(_ => release.Task, a => a());
        Assert.StartsWith("loading: starting Python", vm.StatusText);
        release.SetResult("demo");
    }
}
