using System.Drawing;
using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Tui.Tests;

// A1111's "Live preview method" in the TUI: chosen in the form, saved with the other settings, handed to the next job's
// live previews with the models folders whose VAE-approx holds TAESD files; a fallback note reaches the status line.
#pragma warning disable CS0618 // TextView: see MainWindow
public class PreviewMethodTests
{
    [Fact]
    public void TheMethodIsSavedAndRestoredAndDefaultsToApproxCheap()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-previewmethod-");
        try
        {
            var path = Path.Combine(dir.FullName, SettingsStore.FileName);
            Assert.Equal("Approx cheap", new GeneratorViewModel("/tmp/out").LivePreviewMethod);
            var vm = new GeneratorViewModel("/tmp/out") { LivePreviewMethod = "TAESD" };
            SettingsStore.Save(path, vm.ToSettings());
            Assert.Contains("\"PreviewMethod\": \"TAESD\"", File.ReadAllText(path));
            var back = new GeneratorViewModel("/tmp/out");
            back.Apply(SettingsStore.Load(path, out _)!);
            Assert.Equal("TAESD", back.LivePreviewMethod);
            // A settings file from before the setting existed comes back as the default.
            File.WriteAllText(path, "{\"Prompt\": \"a cat\"}");
            var old = new GeneratorViewModel("/tmp/out") { LivePreviewMethod = "TAESD" };
            old.Apply(SettingsStore.Load(path, out _)!);
            Assert.Equal("Approx cheap", old.LivePreviewMethod);
        }
        finally { dir.Delete(true); }
    }

    [Theory]
    [InlineData("Auto", PreviewMethod.Auto)]
    [InlineData("approx cheap", PreviewMethod.ApproxCheap)]
    [InlineData(" TAESD ", PreviewMethod.Taesd)]
    public void ChoicesParseCaseInsensitively(string text, PreviewMethod expected) =>
        Assert.Equal(expected, GeneratorViewModel.ParsePreviewMethod(text));

    [Fact]
    public void AnUnknownMethodIsAFormErrorNamingTheChoices()
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { Prompt = "a cat", LivePreviewMethod = "VAE" };
        var (request, errors) = vm.BuildRequest();
        Assert.Null(request);
        Assert.Equal(["live preview: 'VAE' is not one of Auto, Approx cheap, TAESD"], errors);
    }

    [Fact]
    public async Task TheFormsChoiceAndTheModelsFoldersReachTheJobsPreviewRequest()
    {
        var root = Directory.CreateTempSubdirectory("lorabridge-previewmethod-");
        try
        {
            var vm = new GeneratorViewModel("/tmp/out", "64x64") { Prompt = "a cat", StepsText = "2" };
            using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a());
            w.Frame = new Rectangle(0, 0, 80, 24);
            w.Layout();
            Assert.Equal("Approx cheap", w.PreviewMethodField.Text);
            // At 80 columns the field has room for its longest choice.
            Assert.True(w.PreviewMethodField.Frame.Width >= "Approx cheap".Length, $"preview field is {w.PreviewMethodField.Frame.Width} wide");
            Assert.True(w.PreviewMethodField.Select("TAESD"));
            Assert.Equal("TAESD", vm.LivePreviewMethod);
            Assert.False(w.PreviewMethodField.Select("VAE"));   // not a choice: the first one (Auto) is shown
            Assert.Equal("Auto", vm.LivePreviewMethod);
            w.PreviewMethodField.Select("TAESD");

            // A provider that boots Python only when asked: the request is made without Python.
            var options = new PythonRuntimeOptions { Executable = "/nonexistent/python3", DataDir = Path.Combine(root.FullName, "data") };
            using var provider = new PythonRuntimeProvider(new PythonDiscovery(options), options);
            var settings = new WorkspaceSettings { DataDir = Path.Combine(root.FullName, "data"), WebUiDir = Path.Combine(root.FullName, "webui") };
            var generator = new WorkspaceGenerator(new GenerationWorkspace(settings, new PythonBridge(provider)), (_, _) => Task.FromResult<LiveFrame?>(null))
            {
                PreviewMethodOf = () => vm.JobPreviewMethod,
            };
            Assert.Equal(PreviewMethod.ApproxCheap, generator.PreviewRequest().Method);   // before any job
            LivePreviewRequest? seen = null;
            await vm.GenerateAsync((_, _, _) => { seen = generator.PreviewRequest(); return Task.FromResult(new JobResult([], [])); }, a => a());
            Assert.NotNull(seen);
            Assert.Equal(PreviewMethod.Taesd, seen.Method);
            Assert.Equal([Path.Combine(root.FullName, "webui", "models"), Path.Combine(root.FullName, "data", "models")], seen.ModelsDirs);
            // Changing the form during a job does not change the running job's method.
            w.PreviewMethodField.Select("Approx cheap");
            Assert.Equal(PreviewMethod.Taesd, generator.PreviewRequest().Method);
            Assert.False(provider.BootRequested);
        }
        finally { root.Delete(true); }
    }

    [Fact]
    public async Task ATaesdFrameIsCaptionedAsTaesdAndItsFallbackNoteIsKept()
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "2" };
        var captions = new List<string>();
        vm.Preview.Changed += () => { if (vm.Preview.IsLive) captions.Add(vm.Preview.Caption); };
        LivePreviews? live = null;
        Generator generator = (_, progress, ct) =>
        {
            int call = 0;
            // First a TAESD frame (8x8), then a fallback frame with its note (the file went away during the job).
            live = new LivePreviews(progress, (IPreviewSink)progress, _ => Task.FromResult<LiveFrame?>(++call == 1
                ? new LiveFrame(new RgbImage(8, 8, new byte[8 * 8 * 3]), true, null)
                : new LiveFrame(new RgbImage(1, 1, [1, 2, 3]), false, "live preview: no taesd_decoder.safetensors; showing Approx cheap")), ct);
            live.Report(new GenerationProgress(0, 1, 1, 2, 1, TimeSpan.Zero));
            live.Report(new GenerationProgress(0, 1, 2, 2, 1, TimeSpan.Zero));
            return Task.FromResult(new JobResult([], []));
        };
        await vm.GenerateAsync(generator, a => a());
        Assert.Equal(["live preview, step 1/2 (A1111 \"TAESD\": tiny decoder at full size)",
            "live preview, step 2/2 (A1111 \"Approx cheap\": approximate colours at 1/8 size)"], captions);
        Assert.Equal("live preview: no taesd_decoder.safetensors; showing Approx cheap", live!.Note);
    }
}
