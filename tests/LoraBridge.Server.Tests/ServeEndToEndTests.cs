using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LoraBridge.Engine;
using LoraBridge.Python;

namespace LoraBridge.Server.Tests;

/// <summary>
/// The real embedded Python, one server on a free loopback port over the demo model; a second workspace on the same
/// bridge plays <c>lorabridge generate</c> (the same construction as GenerateCommands) for the reference images.
/// </summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public string TempDir { get; } = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-serve-{Guid.NewGuid():N}")).FullName;
    public PythonRuntime Runtime { get; private set; } = null!;
    public PythonBridge Bridge { get; private set; } = null!;
    public A1111Server Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public WorkspaceSettings Settings => new() { DataDir = Path.Combine(TempDir, "data") };

    /// <summary>Hooks of every server workspace: lets a test hold a job at a chosen step (inactive unless armed).</summary>
    public StepGate Gate { get; } = new();

    /// <summary>The server's log lines.</summary>
    public ListLogProvider Log { get; } = new();

    public async Task InitializeAsync()
    {
        Runtime = await PythonRuntime.StartAsync(new PythonRuntimeOptions { Executable = TestPython.Executable, TorchThreads = 2 });
        Bridge = new PythonBridge(Runtime);
        Server = new A1111Server(new ServerSettings { Port = 0, LogTo = Log, Scripts = ["PromptSuffix"] }, name =>
        {
            var workspace = new GenerationWorkspace(Settings with { Checkpoint = name }, Bridge);
            workspace.Engine.Hooks = Gate; // where `serve` sets the loaded extensions, as `generate` does
            return workspace;
        }, Bridge);
        await Server.StartAsync(CancellationToken.None);
        Http = new HttpClient { BaseAddress = Server.Address, Timeout = TimeSpan.FromMinutes(10) };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Runtime.Dispose();
        Directory.Delete(TempDir, recursive: true);
    }
}

[CollectionDefinition("serve")]
public sealed class ServeCollection : ICollectionFixture<ServeFixture>;

[Collection("serve")]
public sealed class ServeEndToEndTests(ServeFixture f)
{
    private static StringContent Body(string prompt, long seed) => new(new JsonObject
    {
        ["prompt"] = prompt, ["seed"] = seed, ["steps"] = 4, ["width"] = 64, ["height"] = 64, ["sampler_name"] = "Euler a", ["cfg_scale"] = 7,
        ["some_unknown_field"] = new JsonObject { ["ignored"] = true }, // accepted and ignored, as A1111 does
    }.ToJsonString(), Encoding.UTF8, "application/json");

    private async Task<byte[]> GenerateLikeTheCliAsync(string prompt, long seed)
    {
        var workspace = new GenerationWorkspace(f.Settings, f.Bridge);
        var images = await workspace.GenerateAsync(new GenerationRequest
        {
            Prompt = prompt, Seed = seed, Steps = 4, Width = 64, Height = 64, Sampler = "Euler a", CfgScale = 7,
            OutputDir = Path.Combine(f.TempDir, "cli-" + Guid.NewGuid().ToString("N")),
        }, null, CancellationToken.None);
        return File.ReadAllBytes(Assert.Single(images).Path);
    }

    private static async Task<JsonObject> OkJson(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    [Fact]
    public async Task Txt2ImgWithALoraReturnsGeneratesPngAndA1111sInfo()
    {
        const string prompt = "a lighthouse <lora:demo_style:0.8>";
        var json = await OkJson(await f.Http.PostAsync("/sdapi/v1/txt2img", Body(prompt, 42)));

        var png = Convert.FromBase64String((string)Assert.Single(json["images"]!.AsArray())!);
        // Same engine, same request, same infotext: the whole file is identical, pixels included.
        Assert.Equal(await GenerateLikeTheCliAsync(prompt, 42), png);

        var info = JsonNode.Parse((string)json["info"]!)!.AsObject();
        foreach (var key in new[] { "prompt", "all_prompts", "negative_prompt", "seed", "all_seeds", "subseed", "width", "height", "sampler_name",
                     "cfg_scale", "steps", "batch_size", "sd_model_name", "sd_model_hash", "infotexts", "job_timestamp", "clip_skip", "version" })
            Assert.True(info.ContainsKey(key), $"info has no '{key}'");
        Assert.Equal(42, (long)info["seed"]!);
        Assert.Equal(prompt, (string)info["prompt"]!);
        Assert.Contains("Lora hashes", (string)info["infotexts"]![0]!);
        Assert.Equal(4, (int)json["parameters"]!["steps"]!);
        Assert.False((bool)json["parameters"]!["save_images"]!);

        // png-info reads back what was generated.
        var pngInfo = await OkJson(await f.Http.PostAsync("/sdapi/v1/png-info",
            new StringContent(new JsonObject { ["image"] = "data:image/png;base64," + Convert.ToBase64String(png) }.ToJsonString(), Encoding.UTF8, "application/json")));
        Assert.Equal("42", (string)pngInfo["parameters"]!["Seed"]!);

        var loras = JsonNode.Parse(await f.Http.GetStringAsync("/sdapi/v1/loras"))!.AsArray().Select(l => (string)l!["name"]!);
        Assert.Contains("demo_style", loras);
    }

    [Fact]
    public async Task Img2ImgMatchesTheEnginesImg2ImgPath()
    {
        var init = await GenerateLikeTheCliAsync("a red barn", 3);
        var body = new JsonObject
        {
            ["prompt"] = "a blue barn", ["seed"] = 5, ["steps"] = 4, ["width"] = 64, ["height"] = 64, ["denoising_strength"] = 0.5,
            ["init_images"] = new JsonArray(Convert.ToBase64String(init)),
        };
        var json = await OkJson(await f.Http.PostAsync("/sdapi/v1/img2img", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")));
        var png = Convert.FromBase64String((string)json["images"]![0]!);

        var initPath = Path.Combine(f.TempDir, "init.png");
        File.WriteAllBytes(initPath, init);
        var images = await new GenerationWorkspace(f.Settings, f.Bridge).GenerateAsync(new GenerationRequest
        {
            Prompt = "a blue barn", Seed = 5, Steps = 4, Width = 64, Height = 64, Sampler = "Euler a", CfgScale = 7,
            OutputDir = Path.Combine(f.TempDir, "cli-" + Guid.NewGuid().ToString("N")),
            Img2Img = new Img2ImgSettings { InitImage = initPath, DenoisingStrength = 0.5 },
        }, null, CancellationToken.None);
        Assert.Equal(File.ReadAllBytes(Assert.Single(images).Path), png);
        Assert.Equal(0.5, (double)JsonNode.Parse((string)json["info"]!)!["denoising_strength"]!);
    }

    [Fact]
    public async Task AnUnknownLoraIs422NamingTheClosestNames()
    {
        using var response = await f.Http.PostAsync("/sdapi/v1/txt2img", Body("a lighthouse <lora:demo_styel:1>", 1));
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(422, (int)response.StatusCode);
        Assert.Contains("demo_style", JsonNode.Parse(text)!["detail"]!.ToString());
    }

    [Fact]
    public async Task TwoConcurrentRequestsBothCompleteInOrderWithTheirOwnImages()
    {
        var finished = new List<long>();
        async Task<byte[]> Run(long seed)
        {
            var json = await OkJson(await f.Http.PostAsync("/sdapi/v1/txt2img", Body("a red barn", seed)));
            lock (finished) finished.Add(seed);
            return Convert.FromBase64String((string)json["images"]![0]!);
        }
        var first = Run(7);
        // The second waits behind the first in the queue: start it once the first holds the engine.
        while (!f.Server.Queue.Busy && !first.IsCompleted) await Task.Delay(5);
        var second = Run(8);
        var images = await Task.WhenAll(first, second);

        Assert.Equal([7L, 8L], finished);
        Assert.Equal(await GenerateLikeTheCliAsync("a red barn", 7), images[0]);
        Assert.Equal(await GenerateLikeTheCliAsync("a red barn", 8), images[1]);
    }
}
