using System.Drawing;
using System.Text;
using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Tui.Tests;

// The checkpoint choice: listed from the model folders plus both demos, chosen in the form, handed to the next job.
#pragma warning disable CS0618 // TextView: see MainWindow
public class CheckpointChoiceTests
{
    [Fact]
    public void ChoicesListTheModelFoldersAndBothDemosWithoutStartingPython()
    {
        var root = Directory.CreateTempSubdirectory("lorabridge-ckpt-");
        try
        {
            var folder = Directory.CreateDirectory(Path.Combine(root.FullName, "webui", "models", "Stable-diffusion", "sub")).FullName;
            foreach (var name in new[] { Path.Combine(folder, "..", "anime.safetensors"), Path.Combine(folder, "photo.safetensors") })
            {
                var header = Encoding.UTF8.GetBytes("{}");
                File.WriteAllBytes(name, [.. BitConverter.GetBytes((ulong)header.Length), .. header]);
            }
            // A provider that boots Python only when asked: listing must not ask.
            var options = new PythonRuntimeOptions { Executable = "/nonexistent/python3", DataDir = Path.Combine(root.FullName, "data") };
            using var provider = new PythonRuntimeProvider(new PythonDiscovery(options), options);
            var workspace = new GenerationWorkspace(new WorkspaceSettings { DataDir = Path.Combine(root.FullName, "data"), WebUiDir = Path.Combine(root.FullName, "webui") },
                new PythonBridge(provider));
            var generator = new WorkspaceGenerator(workspace);
            var choices = generator.CheckpointChoices();
            Assert.Equal(generator.CurrentCheckpoint, choices[0]);
            Assert.Contains(DemoCheckpoints.Sd1, choices);
            Assert.Contains(DemoCheckpoints.Sdxl, choices);
            Assert.Contains("anime.safetensors", choices);
            Assert.Contains(Path.Combine("sub", "photo.safetensors"), choices);
            Assert.Equal(choices.Count, choices.Distinct().Count());
            Assert.False(provider.BootRequested);
        }
        finally { root.Delete(true); }
    }

    [Fact]
    public async Task TheChosenCheckpointIsTheJobsAndIsSaved()
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { Prompt = "a cat", StepsText = "2", Checkpoint = "lorabridge-demo" };
        using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a(),
            ["lorabridge-demo", "lorabridge-demo-xl", "anime.safetensors"]);
        w.Frame = new Rectangle(0, 0, 80, 24);
        w.Layout();
        Assert.Equal("lorabridge-demo", w.CheckpointField.Text);
        // At 80 columns the field still has room for the demo's whole name.
        Assert.True(w.CheckpointField.Frame.Width >= "lorabridge-demo".Length + 1, $"model field is {w.CheckpointField.Frame.Width} wide");
        Assert.True(w.CheckpointField.Select("lorabridge-demo-xl"));
        Assert.Equal("lorabridge-demo-xl", vm.Checkpoint);
        Assert.False(w.CheckpointField.Select("not-a-model"));   // only listed checkpoints can be chosen
        w.CheckpointField.Select("lorabridge-demo-xl");
        string? seen = null;
        await vm.GenerateAsync((_, _, _) => { seen = vm.JobCheckpoint; return Task.FromResult(new JobResult([], [])); }, a => a());
        Assert.Equal("lorabridge-demo-xl", seen);
        Assert.Equal("lorabridge-demo-xl", vm.ToSettings().Checkpoint);
        var back = new GeneratorViewModel("/tmp/out");
        back.Apply(vm.ToSettings());
        Assert.Equal("lorabridge-demo-xl", back.Checkpoint);
    }
}
