using System.Drawing;
using LoraBridge.Engine;

namespace LoraBridge.Tui.Tests;

// Hires fix settings: off by default, reach the request, are validated by name, come back from an infotext and a saved file.
#pragma warning disable CS0618 // TextView: see MainWindow
public class HiresSettingsTests
{
    private static (MainWindow, GeneratorViewModel) Build()
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4", Prompt = "a cat" };
        var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a());
        w.Frame = new Rectangle(0, 0, 80, 24);
        w.Layout();
        return (w, vm);
    }

    [Fact]
    public void OffByDefaultAndTheFieldsReachTheRequest()
    {
        var (w, vm) = Build();
        using var _ = w;
        Assert.Null(vm.BuildRequest().Request!.Hires);
        w.HiresField.Select("Latent (nearest-exact)");
        w.HiresScaleField.Text = "1.5";
        w.HiresStepsField.Text = "6";
        w.HiresDenoiseField.Text = "0.55";
        var hires = vm.BuildRequest().Request!.Hires!;
        Assert.Equal(("Latent (nearest-exact)", 1.5, 6, 0.55), (hires.Upscaler, hires.Scale, hires.Steps, hires.DenoisingStrength));
    }

    [Theory]
    [InlineData("5", "0", "0.7", "hires scale: '5'")]
    [InlineData("2", "-1", "0.7", "hires steps: '-1'")]
    [InlineData("2", "0", "1.5", "hires denoising strength: '1.5'")]
    public void BadValuesAreNamedAndNoRequestIsBuilt(string scale, string steps, string denoise, string message)
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64")
        {
            Prompt = "a cat", HiresUpscaler = "Latent", HiresScaleText = scale, HiresStepsText = steps, HiresDenoiseText = denoise,
        };
        var (request, errors) = vm.BuildRequest();
        Assert.Null(request);
        Assert.Contains(errors, e => e.StartsWith(message, StringComparison.Ordinal));
        // The same values with the fix off are not checked (A1111 ignores the hidden box).
        vm.HiresUpscaler = "off";
        Assert.NotNull(vm.BuildRequest().Request);
    }

    [Fact]
    public void ReuseReadsA1111sHiresEntriesAndTurnsTheFixOffWithoutThem()
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64");
        History.Reuse(vm, Infotext.Parse("a cat\nSteps: 4, Seed: 1, Size: 64x64, Denoising strength: 0.45, Hires upscale: 1.5, Hires steps: 3, Hires upscaler: Latent (bicubic)"));
        Assert.Equal(("Latent (bicubic)", "1.5", "3", "0.45"), (vm.HiresUpscaler, vm.HiresScaleText, vm.HiresStepsText, vm.HiresDenoiseText));
        History.Reuse(vm, Infotext.Parse("a dog\nSteps: 4, Seed: 2, Size: 64x64"));
        Assert.Equal(GeneratorViewModel.HiresOff, vm.HiresUpscaler);
        Assert.Null(vm.BuildRequest().Request!.Hires);
    }

    [Fact]
    public void SavedAndRestored()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-hires-");
        try
        {
            var vm = new GeneratorViewModel("/tmp/out") { HiresUpscaler = "Latent (antialiased)", HiresScaleText = "1.25", HiresStepsText = "7", HiresDenoiseText = "0.3" };
            var path = Path.Combine(dir.FullName, SettingsStore.FileName);
            SettingsStore.Save(path, vm.ToSettings());
            var back = new GeneratorViewModel("/tmp/out");
            back.Apply(SettingsStore.Load(path, out _)!);
            Assert.Equal(("Latent (antialiased)", "1.25", "7", "0.3"), (back.HiresUpscaler, back.HiresScaleText, back.HiresStepsText, back.HiresDenoiseText));
        }
        finally { dir.Delete(true); }
    }
}
