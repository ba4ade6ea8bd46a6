using System.Drawing;
using LoraBridge.Models;

namespace LoraBridge.Tui.Tests;

// A1111's card click: tag with the sidecar's preferred weight, then its activation text; incremental search.
#pragma warning disable CS0618 // TextView: see MainWindow
public class LoraCardTests
{
    [Theory]
    [InlineData(null, null, "<lora:x:1>")]
    [InlineData(0.0, null, "<lora:x:1>")]            // A1111 treats 0 as "not set": the default multiplier
    [InlineData(0.65, null, "<lora:x:0.65>")]
    [InlineData(0.8, "  pixel art, 8bit ", "<lora:x:0.8> pixel art, 8bit")]
    public void SnippetFollowsA1111(double? weight, string? activation, string expected) =>
        Assert.Equal(expected, new LoraCard("x", weight, activation).Snippet);

    [Fact]
    public void SidecarValuesReachTheInsertedText()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-tui-");
        try
        {
            // The sidecar as A1111's "edit metadata" dialog writes it; the catalog reads it with UserMetadata.Read.
            var sidecar = Path.Combine(dir.FullName, "demo_style.json");
            File.WriteAllText(sidecar, """{"activation text": "watercolor, soft light", "preferred weight": 0.7, "sd version": "SD1"}""");
            var user = UserMetadata.Read(sidecar, out var error);
            Assert.Null(error);
            var card = new LoraCard("demo_style", user.PreferredWeight, user.ActivationText);
            var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
            using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [card, "demo_subject"], a => a());
            w.Frame = new Rectangle(0, 0, 80, 24);
            w.Layout();
            w.PromptEditor.Text = "a lighthouse";
            w.PromptEditor.InsertionPoint = new Point(12, 0);
            w.LoraList.SelectedItem = 0;
            w.InsertSelectedLora();
            Assert.Equal("a lighthouse <lora:demo_style:0.7> watercolor, soft light", w.PromptEditor.Text);
            Assert.Equal(w.PromptEditor.Text, vm.Prompt);
            Assert.Contains("demo_style 0.7/0.7", w.PlanView.Text);
            Assert.StartsWith(" demo_style", w.LoraList.Source!.ToList()[0] as string);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void SearchFiltersAsYouTypeAndInsertsTheFilteredRow()
    {
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])),
            _ => ["anime_eyes", new LoraCard("demo_style", 0.5, "watercolor"), "demo_subject", "Detail_Tweaker"], a => a());
        w.Frame = new Rectangle(0, 0, 80, 24);
        w.Layout();
        Assert.Equal(4, w.LoraList.Source!.Count);
        w.LoraSearch.Text = "demo";
        Assert.Equal(["demo_style", "demo_subject"], w.LoraList.Source.ToList().Cast<string>().Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]));
        w.LoraSearch.Text = "WATER";   // trigger words match too, case-insensitively
        Assert.Equal(["demo_style"], w.LoraList.Source.ToList().Cast<string>().Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]));
        w.InsertSelectedLora();
        Assert.Equal("<lora:demo_style:0.5> watercolor", w.PromptEditor.Text);
        w.LoraSearch.Text = "nothing like this";
        Assert.Equal(0, w.LoraList.Source.Count);
        w.InsertSelectedLora();   // nothing selected: nothing inserted
        Assert.Equal("<lora:demo_style:0.5> watercolor", w.PromptEditor.Text);
        w.LoraSearch.Text = "";
        Assert.Equal(4, w.LoraList.Source.Count);
    }
}
