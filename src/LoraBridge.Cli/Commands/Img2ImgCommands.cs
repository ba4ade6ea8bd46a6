using System.CommandLine;
using System.Globalization;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli.Commands;

/// <summary>The hires fix options <c>generate</c> and <c>batch</c> take (A1111's txt2img "Hires. fix").</summary>
internal sealed class HiresOptions
{
    public readonly Option<bool> Enable = new("--hires") { Description = "Hires fix: upscale the first pass and refine it with a second pass" };
    public readonly Option<string> Upscaler = new("--hr-upscaler") { Description = "Latent, Latent (antialiased), Latent (bicubic), Latent (nearest), Latent (nearest-exact), … or an upscaler file's name", DefaultValueFactory = _ => "Latent" };
    public readonly Option<double> Scale = new("--hr-scale") { Description = "Upscale factor", DefaultValueFactory = _ => 2.0 };
    public readonly Option<string?> Resize = new("--hr-resize") { Description = "Target WIDTHxHEIGHT instead of a factor (0 follows the aspect ratio, e.g. 1024x0)" };
    public readonly Option<int> Steps = new("--hr-steps") { Description = "Second-pass steps (0: same as --steps)", DefaultValueFactory = _ => 0 };
    public readonly Option<double?> Denoise = new("--denoise") { Description = "Denoising strength (img2img default 0.75, hires default 0.7)" };
    public readonly Option<string> Prompt = new("--hr-prompt") { Description = "Second-pass prompt (default: the prompt)", DefaultValueFactory = _ => "" };
    public readonly Option<string> Negative = new("--hr-negative") { Description = "Second-pass negative prompt (default: the negative prompt)", DefaultValueFactory = _ => "" };
    public readonly Option<string?> Sampler = new("--hr-sampler") { Description = "Second-pass sampler (default: --sampler)" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Enable, Upscaler, Scale, Resize, Steps, Denoise, Prompt, Negative, Sampler })
            command.Options.Add(o);
    }

    /// <summary>The hires settings, or null without <c>--hires</c>.</summary>
    public HiresSettings? Settings(ParseResult parse)
    {
        if (!parse.GetValue(Enable)) return null;
        int rx = 0, ry = 0;
        if (parse.GetValue(Resize) is { } resize) (rx, ry) = ParseResize(resize);
        return new HiresSettings
        {
            Upscaler = parse.GetValue(Upscaler)!,
            Scale = parse.GetValue(Scale),
            ResizeX = rx,
            ResizeY = ry,
            Steps = parse.GetValue(Steps),
            DenoisingStrength = parse.GetValue(Denoise) ?? 0.7,
            Prompt = parse.GetValue(Prompt) ?? "",
            NegativePrompt = parse.GetValue(Negative) ?? "",
            Sampler = parse.GetValue(Sampler),
        };
    }

    private static (int, int) ParseResize(string value) =>
        ImageSize.Parse(value) is { } parsed && (parsed.Width > 0 || parsed.Height > 0)
            ? parsed
            : throw new ArgumentException($"--hr-resize must look like 1024x1024 or 1024x0, got '{value}'");
}

/// <summary><c>img2img</c>, <c>upscalers list</c> and <c>upscale</c> (A1111's img2img tab and Extras).</summary>
public static class Img2ImgCommands
{
    /// <summary>Adds the commands.</summary>
    public static void Register(RootCommand root)
    {
        root.Subcommands.Add(CreateImg2Img());
        root.Subcommands.Add(CreateUpscalers());
        root.Subcommands.Add(CreateUpscale());
    }

    private static Command CreateImg2Img()
    {
        var image = new Argument<FileInfo>("image") { Description = "Init picture (PNG, JPEG, WebP, …); it is only read" };
        var prompt = new Argument<string>("prompt") { Description = "Prompt in the A1111 prompt language" };
        var resizeMode = new Option<string>("--resize-mode") { Description = "Just resize, Crop and resize, Resize and fill, Just resize (latent upscale)", DefaultValueFactory = _ => "Just resize" };
        var fixSteps = new Option<bool>("--fix-steps") { Description = "A1111's img2img_fix_steps: run exactly --steps (a longer schedule) instead of denoise × steps" };
        var upscaler = new Option<string?>("--upscaler") { Description = "Upscaler used when the picture must grow to --size (default: LANCZOS)" };
        var options = new GenerateCommands.GenerationOptions();
        var command = new Command("img2img", "Restyle a picture (A1111's img2img): encode it, noise it to --denoise and sample from there");
        command.Arguments.Add(image);
        command.Arguments.Add(prompt);
        command.Options.Add(resizeMode);
        command.Options.Add(fixSteps);
        command.Options.Add(upscaler);
        options.AddTo(command);
        command.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
            var workspace = new GenerationWorkspace(options.Workspace(parse, o), sp.GetRequiredService<PythonBridge>());
            using var extensions = ExtensionCommands.Load(sp);
            workspace.Engine.Hooks = extensions;
            var init = parse.GetValue(image)!.FullName;
            GenerationRequest request;
            try
            {
                request = options.Request(parse, parse.GetValue(prompt)!, o, workspace.Sources.DefaultSize()) with
                {
                    OutputDir = o.EffectiveOutputDir(parse.GetValue(options.Out) ?? o.OutputDir ?? DefaultImg2ImgDir()),
                    Img2Img = new Img2ImgSettings
                    {
                        InitImage = init,
                        DenoisingStrength = parse.GetValue(options.Hires.Denoise) ?? 0.75,
                        ResizeMode = parse.GetValue(resizeMode)!,
                        FixSteps = parse.GetValue(fixSteps),
                        Upscaler = parse.GetValue(upscaler),
                    },
                };
            }
            catch (ArgumentException ex)
            {
                await Console.Error.WriteLineAsync($"error: {TerminalText.Escape(ex.Message)}");
                return 2; // invalid input (issue 17)
            }
            return await GenerateCommands.RunJobsAsync(workspace, [request], token, bridge: sp.GetRequiredService<PythonBridge>());
        }));
        return command;
    }

    // A1111's Extras names files NNNNN.png; like every output, never written over or through an existing name.
    private static string WriteExtras(string folder, byte[] png)
    {
        Directory.CreateDirectory(folder);
        int first = OutputNaming.NextSequenceNumber(folder);
        return AtomicFile.CreateUnique(folder, attempt => $"{(first + attempt).ToString("D5", CultureInfo.InvariantCulture)}.png", png);
    }

    private static string DefaultImg2ImgDir() =>
        Path.Combine("outputs", "img2img-images", DateTime.Now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));

    private static Command CreateUpscalers()
    {
        var json = new Option<bool>("--json") { Description = "Write JSON" };
        var list = new Command("list", "Upscalers: A1111's built-ins and the files in models/ESRGAN and models/RealESRGAN");
        list.Options.Add(json);
        list.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
            var folders = UpscalerLocations.Folders(o.ToWorkspaceSettings());
            var items = await sp.GetRequiredService<PythonBridge>().ListUpscalersAsync(folders, token);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(items.Select(i => new { name = i.Name, kind = i.Kind, path = i.Path })));
                return 0;
            }
            foreach (var i in items) Console.Out.WriteLine(i.Path.Length > 0 ? $"{i.Name,-28} {i.Path}" : $"{i.Name,-28} (built-in)");
            foreach (var latent in HiresRules.LatentModes) Console.Out.WriteLine($"{latent,-28} (hires fix only: latent upscale)");
            Console.Error.WriteLine($"searched: {string.Join(", ", folders.ModelsDirs.SelectMany(d => new[] { Path.Combine(d, "ESRGAN"), Path.Combine(d, "RealESRGAN") }))}");
            return 0;
        }));
        var command = new Command("upscalers", "Image upscalers (ESRGAN-family files)");
        command.Subcommands.Add(list);
        return command;
    }

    private static Command CreateUpscale()
    {
        var image = new Argument<FileInfo>("image") { Description = "Picture to upscale; it is only read" };
        var name = new Option<string>("--upscaler") { Description = "Upscaler name (see `upscalers list`)", Required = true };
        var scale = new Option<double>("--scale") { Description = "Resize factor (A1111's Extras 'Scale by')", DefaultValueFactory = _ => 4.0 };
        var tile = new Option<int>("--tile") { Description = "Tile size (A1111's ESRGAN_tile; 0: whole picture)", DefaultValueFactory = _ => 192 };
        var overlap = new Option<int>("--tile-overlap") { Description = "Tile overlap (A1111's ESRGAN_tile_overlap)", DefaultValueFactory = _ => 8 };
        var output = new Option<string?>("--out", "-o") { Description = "Output folder (default outputs/extras-images)" };
        var command = new Command("upscale", "Upscale a picture with an upscaler as A1111's Extras tab does (tiled, A1111's blending)");
        command.Arguments.Add(image);
        foreach (var opt in new Option[] { name, scale, tile, overlap, output }) command.Options.Add(opt);
        command.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            var o = sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
            var path = parse.GetValue(image)!.FullName;
            double factor = parse.GetValue(scale);
            if (!File.Exists(path)) { await Console.Error.WriteLineAsync($"error: picture not found: {path}"); return 1; }
            if (!(factor > 0)) { await Console.Error.WriteLineAsync($"error: --scale must be positive, got {factor.ToString(CultureInfo.InvariantCulture)}"); return 1; }
            if (parse.GetValue(tile) is var t && t != 0 && t <= parse.GetValue(overlap))
            {
                await Console.Error.WriteLineAsync($"error: --tile {t} must exceed --tile-overlap {parse.GetValue(overlap)} (or be 0)");
                return 1;
            }
            var folders = UpscalerLocations.Folders(o.ToWorkspaceSettings(), parse.GetValue(tile), parse.GetValue(overlap));
            string upscaler = parse.GetValue(name)!;
            var parameters = $"Postprocess upscale by: {Infotext.FormatNumber(factor)}, Postprocess upscaler: {upscaler}";
            try
            {
                var (png, w, h) = await sp.GetRequiredService<PythonBridge>().UpscaleImageAsync(path, upscaler, factor, folders, parameters, token);
                var outDir = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine("outputs", "extras-images"));
                var written = WriteExtras(outDir, png);
                Console.Out.WriteLine(written);
                Console.Error.WriteLine($"{w}x{h}");
                return 0;
            }
            catch (PythonCallException ex)
            {
                await Console.Error.WriteLineAsync($"error: {ex.Message}");
                return 1;
            }
        }));
        return command;
    }
}
