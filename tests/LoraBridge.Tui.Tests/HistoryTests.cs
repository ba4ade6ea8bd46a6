using System.Buffers.Binary;
using System.Drawing;
using System.Text;

namespace LoraBridge.Tui.Tests;

// History from the output folders' PNG infotext and A1111's "send to txt2img".
#pragma warning disable CS0618 // TextView: see MainWindow
public class HistoryTests
{
    private static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        return chunk;   // CRC left zero: the reader does not check it
    }

    // A PNG as `generate` writes it, reduced to what the history reads: the "parameters" text chunk.
    private static void WritePng(string path, string parameters, DateTime written)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", new byte[13]),
            .. Chunk("tEXt", [.. Encoding.Latin1.GetBytes("parameters"), 0, .. Encoding.Latin1.GetBytes(parameters)]), .. Chunk("IEND", [])];
        File.WriteAllBytes(path, png);
        File.SetLastWriteTimeUtc(path, written);
    }

    [Fact]
    public void HistoryAfterARestartListsEarlierImagesAndReuseRestoresTheirSettings()
    {
        var root = Directory.CreateTempSubdirectory("lorabridge-tui-");
        try
        {
            var yesterday = Path.Combine(root.FullName, "2026-12-01", "00000-1234.png");
            WritePng(yesterday, "a lighthouse <lora:demo_style:0.7>\nNegative prompt: blurry\n" +
                "Steps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 1234, Size: 64x96, Model: lorabridge-demo, Clip skip: 2",
                new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Utc));
            var today = Path.Combine(root.FullName, "2026-12-02", "00001-99.png");
            WritePng(today, "a cat\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 99, Size: 64x64",
                new DateTime(2026, 12, 2, 10, 0, 0, DateTimeKind.Utc));
            File.WriteAllText(Path.Combine(root.FullName, "2026-12-02", "broken.png"), "not a png");   // skipped
            var before = File.ReadAllBytes(yesterday);

            // A new session (a restart) writing into today's dated folder lists both days, newest first.
            var vm = new GeneratorViewModel(Path.Combine(root.FullName, "2026-12-02"), "512x512");
            using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [], a => a());
            w.Frame = new Rectangle(0, 0, 80, 24);
            w.Layout();
            Assert.Equal(root.FullName, w.HistoryRoot);
            Assert.Equal([today, yesterday], w.HistoryItems.Select(h => h.Path));
            Assert.StartsWith("00001-99.png  seed 99  a cat", w.FileList.Source!.ToList()[0]!.ToString());
            Assert.Contains("Schedule type: Karras", w.HistoryItems[1].Details);

            w.FileList.SelectedItem = 1;
            Assert.StartsWith(yesterday + "\nPrompt: a lighthouse <lora:demo_style:0.7>\nNegative prompt: blurry\nSteps: 12\n", w.SelectedHistoryDetails);
            w.ReuseSelected();
            Assert.Equal("a lighthouse <lora:demo_style:0.7>", w.PromptEditor.Text);
            Assert.Equal(("blurry", "12", "5.5", "1234", "64x96"), (vm.NegativePrompt, vm.StepsText, vm.CfgText, vm.SeedText, vm.SizeText));
            Assert.Equal(("DPM++ 2M", "Karras", "2"), (w.SamplerField.Text, w.ScheduleField.Text, w.ClipSkipField.Text));
            var (request, errors) = vm.BuildRequest();
            Assert.Empty(errors);
            Assert.Equal((12, 5.5, 1234L, 64, 96, "DPM++ 2M", "Karras", 2),
                (request!.Steps, request.CfgScale, request.Seed, request.Width, request.Height, request.Sampler, request.Schedule, request.ClipSkip));
            Assert.Contains("demo_style", w.PlanView.Text);
            // Reusing an image without clip skip / schedule resets them to A1111's defaults.
            w.FileList.SelectedItem = 0;
            w.ReuseSelected();
            Assert.Equal(("Euler a", "Automatic", "1", "99"), (w.SamplerField.Text, w.ScheduleField.Text, w.ClipSkipField.Text, w.SeedField.Text));
            Assert.Equal(before, File.ReadAllBytes(yesterday));   // the user's files are only read
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void MissingOutputFolderGivesAnEmptyHistory() =>
        Assert.Empty(History.Scan(Path.Combine(Path.GetTempPath(), "lorabridge-no-such-folder-" + Guid.NewGuid())));
}
