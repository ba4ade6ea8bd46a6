using System.Drawing;
using System.Text;
using System.Text.Json;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.TestSupport;
using LoraBridge.Tokenizers;
using Terminal.Gui.Input;

namespace LoraBridge.Tui.Tests;

// The network panel: LoRA rows with type, rank, family (mismatch marked) and triggers; embeddings behind F4.
#pragma warning disable CS0618 // TextView: see MainWindow
public class NetworkPanelTests
{
    private static readonly LoraCard Sd1Style = new("demo_style", 0.7, "watercolor, soft light") { NetworkType = "lora", Rank = "4", Family = BaseFamily.SD1 };
    private static readonly LoraCard XlDetail = new("detail_xl") { NetworkType = "locon", Rank = "2-8", Family = BaseFamily.SDXL, TrainedWords = ["detailed", "sharp"] };
    private static readonly LoraCard Mystery = new("mystery") { NetworkType = "loha" };

    [Fact]
    public void WideRowsShowEveryColumnWholeAndMarkOnlyTheOtherFamily()
    {
        var rows = NetworkRows.Loras([Sd1Style, XlDetail, Mystery], BaseFamily.SD1, 60);
        Assert.Equal(" demo_style lora  4   SD1  watercolor, soft light", rows[0]);
        Assert.Equal("!detail_xl  locon 2-8 SDXL detailed, sharp", rows[1]);   // Civitai words when no activation text
        Assert.Equal(" mystery    loha  -   ?", rows[2]);                      // unknown family: never a mismatch
        // Against an SDXL checkpoint the mark moves; against an unknown one there is none.
        Assert.Equal(['!', ' ', ' '], NetworkRows.Loras([Sd1Style, XlDetail, Mystery], BaseFamily.SDXL, 60).Select(r => r[0]));
        Assert.All(NetworkRows.Loras([Sd1Style, XlDetail, Mystery], BaseFamily.Unknown, 60), r => Assert.Equal(' ', r[0]));
    }

    [Fact]
    public void NarrowRowsCutEachColumnNotTheRow()
    {
        var longName = new LoraCard("an_extremely_long_lora_name_v2_final") { NetworkType = "lokr", Rank = "16", Family = BaseFamily.SDXL, TrainedWords = ["x"] };
        var rows = NetworkRows.Loras([longName, Sd1Style], BaseFamily.SD1, 24);
        Assert.All(rows, r => Assert.True(r.Length <= 24, r));
        // The name is cut with "…", but type, rank and family are still there, in their columns.
        Assert.Equal("!an_extrem… lokr 16 SDXL", rows[0]);
        Assert.Equal(" demo_style lora 4  SD1", rows[1]);
        // Triggers that do not fit are left to the status line (the selected card's details).
        Assert.Contains("triggers: watercolor, soft light", Sd1Style.Details(BaseFamily.SDXL));
        Assert.Contains("(! checkpoint is SDXL)", Sd1Style.Details(BaseFamily.SDXL));
        Assert.DoesNotContain("!", Sd1Style.Details(BaseFamily.SD1));
    }

    [Fact]
    public void WindowMarksMismatchesFollowsTheModelChoiceAndKeepsA1111Insertion()
    {
        var family = BaseFamily.SD1;
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [Sd1Style, XlDetail], a => a(),
            ["a", "b"], () => family);
        w.Frame = new Rectangle(0, 0, 80, 24);
        w.Layout();
        Assert.Equal(MainWindow.LorasTitle, w.NetworkFrame.Title);
        // Both titles (with the F4 hint) fit the panel's top border at 80 columns (┤ and ├ around the title).
        Assert.True(MainWindow.EmbeddingsTitle.Length <= w.NetworkFrame.Frame.Width - 4, $"panel is {w.NetworkFrame.Frame.Width} wide");
        Assert.True(MainWindow.LorasTitle.Length <= w.NetworkFrame.Frame.Width - 4);
        Assert.Equal([' ', '!'], w.NetworkRowsShown.Select(r => r[0]));
        Assert.All(w.NetworkRowsShown, r => Assert.True(r.Length <= w.LoraList.Viewport.Width, $"'{r}' wider than {w.LoraList.Viewport.Width}"));
        Assert.Contains("SDXL", w.NetworkRowsShown[1]);
        // Another model: the marks are computed again.
        family = BaseFamily.SDXL;
        w.CheckpointField.Select("b");
        Assert.Equal(['!', ' '], w.NetworkRowsShown.Select(r => r[0]));
        // Enter still inserts what A1111's card click inserts.
        w.PromptEditor.Text = "a lighthouse";
        w.PromptEditor.InsertionPoint = new Point(12, 0);
        w.LoraList.SelectedItem = 0;
        Assert.Equal(Sd1Style.Details(BaseFamily.SDXL), w.SelectedNetworkDetails);
        w.InsertSelectedLora();
        Assert.Equal("a lighthouse <lora:demo_style:0.7> watercolor, soft light", w.PromptEditor.Text);
    }

    [Fact]
    public void F4ListsEmbeddingsAndEnterInsertsTheName()
    {
        IReadOnlyList<EmbeddingCard>? embeddings = null;   // not prepared yet
        var vm = new GeneratorViewModel("/tmp/out", "64x64") { StepsText = "4" };
        using var w = new MainWindow(vm, (_, _, _) => Task.FromResult(new JobResult([], [])), _ => [Sd1Style], a => a(), null, null, () => embeddings);
        w.Frame = new Rectangle(0, 0, 80, 24);
        w.Layout();
        Assert.True(w.HandleKey(Key.F4, () => { }));
        Assert.True(w.EmbeddingsShown);
        Assert.Equal(MainWindow.EmbeddingsTitle, w.NetworkFrame.Title);
        Assert.Equal([MainWindow.EmbeddingsPending], w.NetworkRowsShown);
        w.PromptEditor.Text = "a cat";
        w.LoraList.SelectedItem = 0;
        w.InsertSelectedLora();
        Assert.Equal("a cat", w.PromptEditor.Text);   // the placeholder row inserts nothing

        // Back to LoRAs and again to embeddings, now that the checkpoint is ready.
        embeddings =
        [
            new("bad-hands", 6, "loaded", null, "bad-hands.safetensors"),
            new("xl-style", 2, "skipped", "width 2048 does not fit the text encoder's 768; the name stays plain text", "xl-style.safetensors"),
            new("", null, "error", "UnpicklingError: broken", "broken.pt"),
        ];
        w.HandleKey(Key.L.WithCtrl, () => { });
        Assert.False(w.EmbeddingsShown);
        Assert.Equal([NetworkRows.Loras([Sd1Style], BaseFamily.Unknown, w.LoraList.Viewport.Width)[0]], w.NetworkRowsShown);
        w.HandleKey(Key.F4, () => { });
        Assert.Equal([" bad-hands 6v loaded", "!xl-style  2v skipped", "!broken.pt  ? error"], w.NetworkRowsShown);
        w.LoraList.SelectedItem = 1;
        Assert.Contains("does not fit the text encoder's 768", w.SelectedNetworkDetails);
        w.LoraSearch.Text = "hands";
        Assert.Single(w.NetworkRowsShown);
        w.PromptEditor.Text = "a cat, portrait";
        w.PromptEditor.InsertionPoint = new Point(6, 0);
        w.LoraList.SelectedItem = 0;
        w.InsertSelectedLora();
        Assert.Equal("a cat, bad-hands portrait", w.PromptEditor.Text);
        Assert.Equal(w.PromptEditor.Text, vm.Prompt);
        // An unreadable file has no name to insert.
        w.LoraSearch.Text = "broken";
        w.InsertSelectedLora();
        Assert.Equal("a cat, bad-hands portrait", w.PromptEditor.Text);
    }

    [SharedFact]
    public async Task EmbeddingCardsComeFromTheDatabaseWithoutPython()
    {
        var dir = Directory.CreateTempSubdirectory("lorabridge-emb-");
        try
        {
            WriteSafetensors(Path.Combine(dir.FullName, "bad-hands.safetensors"), new() { ["emb_params"] = [6, 768] });
            WriteSafetensors(Path.Combine(dir.FullName, "xl-style.safetensors"), new() { ["clip_g"] = [2, 1280], ["clip_l"] = [2, 768] });
            File.WriteAllBytes(Path.Combine(dir.FullName, "old.pt"), [0x80, 0x02]);
            var before = Directory.GetFiles(dir.FullName).ToDictionary(f => f, File.ReadAllBytes);
            var db = await EmbeddingDatabase.LoadAsync([dir.FullName], 768, ClipTokenizer.FromDirectory(SharedData.ClipDir), reader: null);
            var cards = EmbeddingCard.From(db);
            Assert.Equal(["bad-hands", "xl-style", ""], cards.Select(c => c.Name));
            Assert.Equal(["loaded", "skipped", "error"], cards.Select(c => c.Status));
            Assert.Equal([6, 2, null], cards.Select(c => c.Vectors));
            Assert.Null(cards[0].Reason);
            Assert.Contains("768", cards[1].Reason);
            Assert.Contains("needs Python", cards[2].Reason);   // pickles are read by Python during PrepareAsync
            Assert.All(before, kv => Assert.Equal(kv.Value, File.ReadAllBytes(kv.Key)));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void GeneratorReadsTypeRankFamilyAndCheckpointFamiliesFromFilesWithoutStartingPython()
    {
        var root = Directory.CreateTempSubdirectory("lorabridge-net-");
        try
        {
            var webui = Path.Combine(root.FullName, "webui");
            var lora = Directory.CreateDirectory(Path.Combine(webui, "models", "Lora")).FullName;
            var ckpt = Directory.CreateDirectory(Path.Combine(webui, "models", "Stable-diffusion")).FullName;
            const string Key = "lora_unet_down_blocks_0_attentions_0_proj_in";
            WriteSafetensors(Path.Combine(lora, "detail_xl.safetensors"),
                new() { [Key + ".lora_down.weight"] = [4, 320], [Key + ".lora_up.weight"] = [320, 4], [Key + ".alpha"] = [] },
                new() { ["ss_base_model_version"] = "sdxl_base_v1-0" });
            WriteSafetensors(Path.Combine(lora, "demo_style.safetensors"),
                new() { [Key + ".lora_down.weight"] = [8, 320], [Key + ".lora_up.weight"] = [320, 8] });
            File.WriteAllText(Path.Combine(lora, "demo_style.json"), """{"activation text": "watercolor", "preferred weight": 0.6, "sd version": "SD1"}""");
            File.WriteAllText(Path.Combine(lora, "demo_style.civitai.info"), """{"trainedWords": ["aquarelle"], "baseModel": "SD 1.5"}""");
            WriteSafetensors(Path.Combine(ckpt, "anime.safetensors"), new() { ["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = [768] });

            var options = new PythonRuntimeOptions { Executable = "/nonexistent/python3", DataDir = Path.Combine(root.FullName, "data") };
            using var provider = new PythonRuntimeProvider(new PythonDiscovery(options), options);
            var workspace = new GenerationWorkspace(new WorkspaceSettings { DataDir = Path.Combine(root.FullName, "data"), WebUiDir = webui }, new PythonBridge(provider));
            var generator = new WorkspaceGenerator(workspace);

            var cards = generator.LoraCards();
            var xl = cards.Single(c => c.Alias == "detail_xl");
            Assert.Equal(("lora", "4", BaseFamily.SDXL), (xl.NetworkType, xl.Rank, xl.Family));
            var style = cards.Single(c => c.Alias == "demo_style");
            Assert.Equal(("8", BaseFamily.SD1, "watercolor"), (style.Rank, style.Family, style.Triggers));
            Assert.Equal("<lora:demo_style:0.6> watercolor", style.Snippet);   // activation text, not Civitai's words

            Assert.Equal(BaseFamily.SD1, generator.FamilyOf("anime.safetensors"));
            Assert.Equal(BaseFamily.SD1, generator.FamilyOf(DemoCheckpoints.Sd1));
            Assert.Equal(BaseFamily.SDXL, generator.FamilyOf(DemoCheckpoints.Sdxl));
            Assert.Equal(BaseFamily.Unknown, generator.FamilyOf("missing.safetensors"));
            Assert.True(xl.MismatchWith(generator.FamilyOf("anime.safetensors")));
            Assert.False(style.MismatchWith(generator.FamilyOf("anime.safetensors")));
            Assert.Null(generator.EmbeddingCards());   // known once the checkpoint is prepared
            Assert.False(provider.BootRequested);
        }
        finally { root.Delete(true); }
    }

    /// <summary>A safetensors file of F16 zeros with the given tensor shapes and metadata.</summary>
    private static void WriteSafetensors(string path, Dictionary<string, long[]> tensors, Dictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = 2 * shape.Aggregate(1L, (a, b) => a * b);
            header[name] = new { dtype = "F16", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. new byte[offset]]);
    }
}
