using System.Drawing;
using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Tui.Tests;

// ESRGAN-family upscalers in the hires choice: named as python/lorabridge/upscaler.py names them, listed without Python.
#pragma warning disable CS0618 // TextView: see MainWindow
public class HiresUpscalerTests
{
    [Fact]
    public void FilesAreNamedAsTheUpscalerCatalogNamesThemWithoutStartingPython()
    {
        var root = Directory.CreateTempSubdirectory("lorabridge-up-");
        try
        {
            var models = Path.Combine(root.FullName, "webui", "models");
            var esrgan = Directory.CreateDirectory(Path.Combine(models, "ESRGAN", "sub")).FullName;
            var real = Directory.CreateDirectory(Path.Combine(models, "RealESRGAN")).FullName;
            File.WriteAllBytes(Path.Combine(models, "ESRGAN", "4x-UltraSharp.pth"), [1]);
            File.WriteAllBytes(Path.Combine(esrgan, "2x_Tiny.SAFETENSORS"), [1]);     // extensions in any case
            File.WriteAllBytes(Path.Combine(models, "ESRGAN", "readme.txt"), [1]);    // not an upscaler
            File.WriteAllBytes(Path.Combine(real, "RealESRGAN_x4plus_anime_6B.pth"), [1]);
            File.WriteAllBytes(Path.Combine(real, "my_real.pt"), [1]);
            var dataModels = Directory.CreateDirectory(Path.Combine(root.FullName, "data", "models", "ESRGAN")).FullName;
            File.WriteAllBytes(Path.Combine(dataModels, "1x_Denoise.pth"), [1]);

            var options = new PythonRuntimeOptions { Executable = "/nonexistent/python3", DataDir = Path.Combine(root.FullName, "data") };
            using var provider = new PythonRuntimeProvider(new PythonDiscovery(options), options);
            var settings = new WorkspaceSettings { DataDir = Path.Combine(root.FullName, "data"), WebUiDir = Path.Combine(root.FullName, "webui") };
            var generator = new WorkspaceGenerator(new GenerationWorkspace(settings, new PythonBridge(provider)));
            // Built-ins, then the A1111 install's ESRGAN (path order: "4x-…" before "sub/…"), its RealESRGAN (A1111's
            // display name for its own download), then the data folder's.
            Assert.Equal(["None", "Lanczos", "Nearest", "4x-UltraSharp", "2x_Tiny", "R-ESRGAN 4x+ Anime6B", "my_real", "1x_Denoise"],
                generator.UpscalerChoices());
            Assert.False(provider.BootRequested);

            var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4", Prompt = "a cat" };
            vm.UseImageUpscalers(generator.UpscalerChoices());
            using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a());
            w.Frame = new Rectangle(0, 0, 80, 24);
            w.Layout();
            // Latent modes first, as A1111's dropdown; the field steps onto the files.
            Assert.Equal([.. GeneratorViewModel.HiresUpscalers, "None", "Lanczos", "Nearest", "4x-UltraSharp", "2x_Tiny", "R-ESRGAN 4x+ Anime6B", "my_real", "1x_Denoise"],
                vm.HiresChoices);
            Assert.True(w.HiresField.Select("R-ESRGAN 4x+ Anime6B"));
            Assert.Equal("R-ESRGAN 4x+ Anime6B", vm.BuildRequest().Request!.Hires!.Upscaler);
            Assert.True(w.HiresField.Select("4x-UltraSharp"));
            Assert.Equal("4x-UltraSharp", vm.BuildRequest().Request!.Hires!.Upscaler);
        }
        finally { root.Delete(true); }
    }

    [Fact]
    public void AnUpscalerThatIsNotListedIsNamedInTheError()
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4", Prompt = "a cat", HiresUpscaler = "4x-Gone" };
        vm.UseImageUpscalers(["None", "4x-UltraSharp"]);
        var built = vm.BuildRequest();
        Assert.Null(built.Request);
        Assert.Contains("hires: '4x-Gone' is not one of", string.Join("\n", built.Errors));
        Assert.Contains("4x-UltraSharp", string.Join("\n", built.Errors));
        // Without the image upscalers only the latent modes are accepted (the form's default).
        var plain = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4", Prompt = "a cat", HiresUpscaler = "4x-UltraSharp" };
        Assert.Null(plain.BuildRequest().Request);
    }
}
