using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LoraBridge.Cli.Tests;

/// <summary><c>serve</c> as a user starts it: a child process on a free loopback port, stopped with Ctrl+C.</summary>
public sealed class ServeCommandTests(CliDataFixture f) : IClassFixture<CliDataFixture>
{
    [Fact]
    public async Task ServeRunsTheConfiguredExtensionsAsGenerateDoesAndStopsOnCtrlC()
    {
        // An extension in the data folder's extensions/ (the default folder `generate` loads from too).
        var extensions = Directory.CreateDirectory(Path.Combine(f.DataDir, "extensions")).FullName;
        File.WriteAllText(Path.Combine(extensions, "Suffix.cs"), """
            public sealed class Suffix : ILoraBridgeExtension
            {
                public string Name => "Suffix";
                public string Description => "appends a style";
                public ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest r, CancellationToken ct) =>
                    ValueTask.FromResult(r with { Prompt = r.Prompt + ", oil painting" });
            }
            """);
        var outDir = f.NewDir("out");
        using var cli = CliProcess.Start(["serve", "--port", "0", "--out", outDir, .. f.Common], f.Root, waitFor: "serving A1111's API on ");
        await cli.WaitForLineAsync(300);
        var address = Regex.Match(cli.Stdout, @"serving A1111's API on (http://127\.0\.0\.1:\d+/?)").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(address), cli.Stdout);
        using var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(5) };

        var body = new JsonObject
        {
            ["prompt"] = "a red barn", ["seed"] = 4, ["steps"] = 3, ["width"] = 64, ["height"] = 64, ["save_images"] = true,
            ["alwayson_scripts"] = new JsonObject { ["Suffix"] = new JsonObject { ["args"] = new JsonArray() } },
        };
        using var response = await http.PostAsync("/sdapi/v1/txt2img", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}\nstderr:\n{cli.Stderr}");
        var info = JsonNode.Parse((string)JsonNode.Parse(text)!["info"]!)!;
        // The extension rewrote the prompt before the job ran, so the infotext carries the suffix.
        Assert.StartsWith("a red barn, oil painting\n", (string)info["infotexts"]![0]!);
        Assert.True(File.Exists(Path.Combine(outDir, "00000-4.png")));
        var scripts = JsonNode.Parse(await http.GetStringAsync("/sdapi/v1/scripts"))!;
        Assert.Contains("suffix", scripts["txt2img"]!.AsArray().Select(n => (string)n!));

        cli.SendSigint();
        Assert.Equal(0, await cli.WaitForExitAsync(60));
        Assert.Contains("alwayson_scripts: arguments for extension 'Suffix' ignored", cli.Stderr);

        // A fresh `generate` process (same extension, seed and settings) writes the same file, byte for byte.
        var generateOut = f.NewDir("generate");
        var (code, stdout, stderr) = await CliProcess.RunAsync(["generate", "a red barn", "--seed", "4", "--steps", "3", "--size", "64x64", "--out", generateOut, .. f.Common], f.Root);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(File.ReadAllBytes(Path.Combine(generateOut, "00000-4.png")), File.ReadAllBytes(Path.Combine(outDir, "00000-4.png")));
    }
}
