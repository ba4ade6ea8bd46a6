using System.Text.Json;
using System.Text.Json.Nodes;
using LoraBridge.Engine;
using LoraBridge.Models;
using LoraBridge.Python;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace LoraBridge.Server;

public sealed partial class A1111Server
{
    /// <summary>Samplers the engine implements (python/lorabridge/samplers.py), with A1111's aliases.</summary>
    public static IReadOnlyList<(string Name, string[] Aliases)> Samplers => SamplerNames.All;

    private static readonly Dictionary<string, string> Summaries = new(StringComparer.Ordinal);

    private void MapEndpoints(WebApplication app)
    {
        Map(app, "GET", "/internal/ping", "Liveness check", _ => Task.FromResult<IResult>(Results.Json(new JsonObject())));
        Map(app, "POST", "/sdapi/v1/txt2img", "Text to image (A1111 v1.10.1 request and response)", Txt2Img);
        Map(app, "POST", "/sdapi/v1/img2img", "Image to image: init_images[0], denoising_strength, resize_mode (no masks)", Img2Img);
        Map(app, "GET", "/sdapi/v1/sd-models", "Checkpoints", _ => Task.FromResult(Results.Json(Checkpoints())));
        Map(app, "POST", "/sdapi/v1/refresh-checkpoints", "Rescan checkpoint folders", _ => Task.FromResult(Results.Json(new JsonObject())));
        Map(app, "GET", "/sdapi/v1/loras", "LoRA files", _ => Task.FromResult(Results.Json(Loras())));
        Map(app, "POST", "/sdapi/v1/refresh-loras", "Rescan LoRA folders", _ =>
        {
            Workspace(_options.Checkpoint).Catalog.Rescan();
            return Task.FromResult(Results.Json(new JsonObject()));
        });
        Map(app, "GET", "/sdapi/v1/samplers", "Samplers", _ => Task.FromResult(Results.Json(new JsonArray([.. Samplers.Select(s =>
            (JsonNode)new JsonObject { ["name"] = s.Name, ["aliases"] = new JsonArray([.. s.Aliases.Select(a => (JsonNode)a)]), ["options"] = new JsonObject() })]))));
        Map(app, "GET", "/sdapi/v1/schedulers", "Schedule types", _ => Task.FromResult(Results.Json(new JsonArray(
            new JsonObject { ["name"] = "automatic", ["label"] = "Automatic", ["aliases"] = null, ["default_rho"] = -1, ["need_inner_model"] = false },
            new JsonObject { ["name"] = "karras", ["label"] = "Karras", ["aliases"] = null, ["default_rho"] = 7.0, ["need_inner_model"] = false }))));
        Map(app, "GET", "/sdapi/v1/upscalers", "Upscalers (built-ins and models/ESRGAN, models/RealESRGAN)", Upscalers);
        Map(app, "GET", "/sdapi/v1/embeddings", "Textual-inversion embeddings of the current checkpoint", Embeddings);
        Map(app, "GET", "/sdapi/v1/options", "Settings", _ => Task.FromResult(Results.Json(_options.ToJson(CurrentTitle()))));
        Map(app, "POST", "/sdapi/v1/options", "Change settings (sd_model_checkpoint loads that checkpoint)", SetOptions);
        Map(app, "GET", "/sdapi/v1/progress", "Progress of the running job", _ => Task.FromResult(Results.Json(ProgressJson())));
        Map(app, "POST", "/sdapi/v1/interrupt", "Stop the running job (weights restored)", _ =>
        {
            _queue.Interrupt();
            return Task.FromResult(Results.Json(new JsonObject()));
        });
        Map(app, "POST", "/sdapi/v1/skip", "Skip the batch being sampled; the request goes on with its next batch", _ =>
        {
            _queue.Skip();
            return Task.FromResult(Results.Json(new JsonObject()));
        });
        Map(app, "POST", "/sdapi/v1/png-info", "Generation parameters stored in a PNG", PngInfo);
        Map(app, "GET", "/sdapi/v1/cmd-flags", "Command-line flags", _ => Task.FromResult(Results.Json(new JsonObject
        {
            ["listen"] = !_settings.IsLoopback,
            ["port"] = _settings.Port,
            ["api"] = true,
            ["api_auth"] = _settings.ApiAuth is null ? null : "***",
            ["nowebui"] = true,
        })));
        Map(app, "GET", "/sdapi/v1/scripts", "Scripts: the loaded extensions (they run on every job, as A1111's always-on scripts)", _ =>
            Task.FromResult(Results.Json(new JsonObject { ["txt2img"] = ScriptList(), ["img2img"] = ScriptList() })));
        app.MapGet("/openapi.json", (EndpointDataSource source) => Results.Json(OpenApi(source)));
    }

    private JsonArray ScriptList() => new([.. _settings.Scripts.Select(n => (JsonNode)n.ToLowerInvariant())]);

    private static void Map(WebApplication app, string method, string path, string summary, Func<HttpContext, Task<IResult>> handler)
    {
        Summaries[method + " " + path] = summary;
        app.MapMethods(path, [method], handler);
    }

    private static JsonObject OpenApi(EndpointDataSource source)
    {
        var paths = new JsonObject();
        foreach (var e in source.Endpoints.OfType<RouteEndpoint>().OrderBy(e => e.RoutePattern.RawText, StringComparer.Ordinal))
        {
            var path = e.RoutePattern.RawText!;
            if (path == "/openapi.json") continue;
            var item = paths[path] as JsonObject ?? [];
            foreach (var m in e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? [])
            {
                item[m.ToLowerInvariant()] = new JsonObject
                {
                    ["summary"] = Summaries.GetValueOrDefault(m + " " + path, ""),
                    ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "Successful Response" } },
                };
            }
            paths[path] = item;
        }
        return new JsonObject
        {
            ["openapi"] = "3.1.0",
            ["info"] = new JsonObject { ["title"] = "LoraBridge (AUTOMATIC1111 API)", ["version"] = GenerationEngine.Version },
            ["paths"] = paths,
        };
    }

    private async Task<IResult> Txt2Img(HttpContext ctx)
    {
        var body = await ReadBody(ctx.Request).ConfigureAwait(false);
        return await Generate(ctx, Txt2ImgRequest.Parse(body, _settings.Limits, _options.RequestDefaults()), r => r, "txt2img-images").ConfigureAwait(false);
    }

    // A1111's StableDiffusionImg2ImgProcessingAPI: the txt2img fields plus the init image and how it is used.
    private async Task<IResult> Img2Img(HttpContext ctx)
    {
        var body = await ReadBody(ctx.Request).ConfigureAwait(false);
        var request = Txt2ImgRequest.Parse(body, _settings.Limits, _options.RequestDefaults());
        var json = ParseObject(body);
        if (json["mask"] is JsonValue) throw new ApiError(501, "NotImplementedError", "inpainting (mask) is not served yet");
        var first = (json["init_images"] as JsonArray)?.FirstOrDefault() as JsonValue;
        if (first is null || !first.TryGetValue<string>(out var image)) throw ApiError.Invalid("init_images", "must hold at least one base64 image");
        int comma = image.StartsWith("data:", StringComparison.Ordinal) ? image.IndexOf(',', StringComparison.Ordinal) : -1;
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(image[(comma + 1)..]);
        }
        catch (FormatException)
        {
            throw ApiError.Invalid("init_images", "is not base64");
        }
        double denoise = Txt2ImgRequest.Double(json, "denoising_strength", 0.75, 0, 1);
        int resize = Txt2ImgRequest.Int(json, "resize_mode", 0, 0, HiresRules.ResizeModes.Count - 1);
        request.Parameters["denoising_strength"] = denoise;
        request.Parameters["resize_mode"] = resize;
        request.Parameters.Remove("init_images"); // A1111 does not echo the images back either
        var initPath = Path.Combine(Path.GetTempPath(), $"lorabridge-serve-init-{Guid.NewGuid():N}.png");
        await File.WriteAllBytesAsync(initPath, bytes).ConfigureAwait(false);
        try
        {
            return await Generate(ctx, request, r => r with
            {
                Img2Img = new Img2ImgSettings { InitImage = initPath, DenoisingStrength = denoise, ResizeMode = HiresRules.ResizeModes[resize] },
            }, "img2img-images").ConfigureAwait(false);
        }
        finally
        {
            File.Delete(initPath);
        }
    }

    private async Task<IResult> Generate(HttpContext ctx, Txt2ImgRequest request, Func<GenerationRequest, GenerationRequest> adjust, string outputKind)
    {
        WarnIgnoredScripts(request.AlwaysOnScripts);
        var checkpoint = CheckpointName(request.Checkpoint) ?? _options.Checkpoint;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await _queue.RunAsync(async (ct, progress) =>
        {
            var waited = clock.Elapsed;
            var workspace = Workspace(checkpoint);
            var context = await Prepare(workspace, ct).ConfigureAwait(false);
            var loaded = clock.Elapsed;
            // Unsaved images are written to a private folder and removed after reading: the engine always writes files.
            var outDir = request.SaveImages
                ? Path.GetFullPath(_options.OutputDir ?? Path.Combine("outputs", outputKind, DateTime.Now.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)))
                : Path.Combine(Path.GetTempPath(), "lorabridge-serve-" + Guid.NewGuid().ToString("N"));
            var generation = adjust(request.Generation with { OutputDir = outDir });
            // The seed is drawn here rather than in the engine (same range), so a job resumed after /skip knows it.
            if (generation.Seed == -1) generation = generation with { Seed = Random.Shared.NextInt64(0, 4294967294L) };
            var problems = workspace.Check(generation);
            if (problems.Count > 0) throw new ApiError(422, "ValidationError", string.Join("; ", problems));
            try
            {
                var engineStart = clock.Elapsed;
                var images = await RunWithSkipsAsync(workspace, generation, outDir, progress, ct).ConfigureAwait(false);
                var engine = clock.Elapsed - engineStart;
                foreach (var w in workspace.Warnings.Distinct()) _log.LogWarning("{Warning}", w);
                workspace.Warnings.Clear();
                var pngs = images.Select(i => File.ReadAllBytes(i.Path)).ToList();
                return (Images: images, Pngs: pngs, Context: context, Generation: generation, Waited: waited, Load: loaded - waited, Engine: engine);
            }
            finally
            {
                if (!request.SaveImages && Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
            }
        }, Stopping).ConfigureAwait(false);
        // Server-Timing (a standard header, shown by browsers' dev tools): time queued behind other jobs, checkpoint
        // preparation, and the engine's own time; whatever the client measures beyond them is the server's overhead.
        ctx.Response.Headers["Server-Timing"] = ServerTiming.Format(result.Waited, result.Load, result.Engine);
        var info = InfoJson(result.Generation, result.Context, result.Images);
        return Results.Json(new JsonObject
        {
            ["images"] = request.SendImages ? new JsonArray([.. result.Pngs.Select(p => (JsonNode)Convert.ToBase64String(p))]) : new JsonArray(),
            ["parameters"] = request.Parameters,
            ["info"] = info.ToJsonString(),
        });
    }

    // Runs the job; on /interrupt returns the images of the batches that finished, on /skip drops the batch being sampled
    // and runs the remaining batches (A1111's n_iter loop goes on with the next batch's seeds).
    private async Task<List<GeneratedImage>> RunWithSkipsAsync(GenerationWorkspace workspace, GenerationRequest generation, string outDir,
        IProgress<GenerationProgress> progress, CancellationToken ct)
    {
        var images = new List<GeneratedImage>();
        var part = generation;
        while (true)
        {
            // Jobs run one at a time, so the PNGs that appear in the folder during this part are this job's.
            var before = Directory.Exists(outDir) ? Directory.GetFiles(outDir, "*.png").ToHashSet(StringComparer.Ordinal) : [];
            try
            {
                images.AddRange(await workspace.GenerateAsync(part, progress, ct).ConfigureAwait(false));
                return images;
            }
            catch (OperationCanceledException) when (_queue.Interrupted && !Stopping.IsCancellationRequested)
            {
                // A1111 answers an interrupted job with the images finished so far: here, those of the batches
                // (n_iter) that completed; the batch being sampled is dropped (the engine decodes no partial latent).
                images.AddRange(FinishedImages(outDir, before));
                _log.LogInformation("interrupted: {Count} finished image(s) returned", images.Count);
                return images;
            }
            catch (OperationCanceledException) when (_queue.Skipped && !Stopping.IsCancellationRequested)
            {
                var finished = FinishedImages(outDir, before);
                images.AddRange(finished);
                // The skipped batch is the one after the completed ones (a batch whose files were partly written counts as done).
                int next = (finished.Count + part.BatchSize - 1) / part.BatchSize + (finished.Count % part.BatchSize == 0 ? 1 : 0);
                ct = _queue.ContinueAfterSkip();
                int remaining = part.BatchCount - next;
                _log.LogInformation("skipped batch {Batch} of {Count}; {Remaining} more to run", next, part.BatchCount, Math.Max(0, remaining));
                if (remaining <= 0) return images;
                part = part with { Seed = part.Seed + (long)next * part.BatchSize, BatchCount = remaining };
            }
        }
    }

    // A1111 runs alwayson_scripts through its script runner; LoraBridge extensions take their settings from the
    // configuration instead, so the arguments are dropped: say so rather than pretend they were used.
    private void WarnIgnoredScripts(IReadOnlyList<string> scripts)
    {
        foreach (var name in scripts)
        {
            if (_settings.Scripts.Contains(name, StringComparer.OrdinalIgnoreCase))
                _log.LogWarning("alwayson_scripts: arguments for extension '{Name}' ignored (LoraBridge extensions read their settings from LoraBridge:Extensions:{Name}:…)", name, name);
            else
                _log.LogWarning("alwayson_scripts: '{Name}' ignored: no such script or extension is loaded", name);
        }
    }

    // The PNGs written into outDir since `before`, in file-name order (A1111's numbering), with seed and infotext read back.
    private static List<GeneratedImage> FinishedImages(string outDir, HashSet<string> before)
    {
        if (!Directory.Exists(outDir)) return [];
        return [.. Directory.GetFiles(outDir, "*.png").Where(p => !before.Contains(p)).Order(StringComparer.Ordinal).Select(p =>
        {
            var text = PngText.Read(File.ReadAllBytes(p)).GetValueOrDefault("parameters") ?? "";
            long seed = long.TryParse(Infotext.Parse(text)["Seed"], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : -1;
            return new GeneratedImage(p, seed, text);
        })];
    }

    private static async Task<CheckpointContext> Prepare(GenerationWorkspace workspace, CancellationToken ct)
    {
        try
        {
            return await workspace.PrepareAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or LoraBridge.Tokenizers.TokenizerNotFoundException)
        {
            throw new ApiError(404, "HTTPException", ex.Message);
        }
    }

    private static JsonObject InfoJson(GenerationRequest r, CheckpointContext checkpoint, IReadOnlyList<GeneratedImage> images)
    {
        long firstSeed = images.Count > 0 ? images[0].Seed : r.Seed;
        JsonArray Repeat(string s) => new([.. images.Select(_ => (JsonNode)s)]);
        return new JsonObject
        {
            ["prompt"] = r.Prompt,
            ["all_prompts"] = Repeat(r.Prompt),
            ["negative_prompt"] = r.NegativePrompt,
            ["all_negative_prompts"] = Repeat(r.NegativePrompt),
            ["seed"] = firstSeed,
            ["all_seeds"] = new JsonArray([.. images.Select(i => (JsonNode)i.Seed)]),
            ["subseed"] = -1,
            ["all_subseeds"] = new JsonArray([.. images.Select(_ => (JsonNode)(-1))]),
            ["subseed_strength"] = 0,
            ["width"] = r.Width,
            ["height"] = r.Height,
            ["sampler_name"] = r.Sampler,
            ["cfg_scale"] = r.CfgScale,
            ["steps"] = r.Steps,
            ["batch_size"] = r.BatchSize,
            ["restore_faces"] = false,
            ["face_restoration_model"] = null,
            ["sd_model_name"] = checkpoint.Name,
            ["sd_model_hash"] = checkpoint.ShortHash,
            ["sd_vae_name"] = null,
            ["sd_vae_hash"] = null,
            ["seed_resize_from_w"] = -1,
            ["seed_resize_from_h"] = -1,
            ["denoising_strength"] = r.Img2Img?.DenoisingStrength ?? r.Hires?.DenoisingStrength,
            ["extra_generation_params"] = new JsonObject(),
            ["index_of_first_image"] = 0,
            ["infotexts"] = new JsonArray([.. images.Select(i => (JsonNode)i.Infotext)]),
            ["styles"] = new JsonArray(),
            ["job_timestamp"] = DateTime.Now.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture),
            ["clip_skip"] = r.ClipSkip,
            ["is_using_inpainting_conditioning"] = false,
            ["version"] = GenerationEngine.Version,
        };
    }

    private string? CurrentTitle()
    {
        var w = Workspace(_options.Checkpoint);
        var path = w.Sources.FindConfiguredCheckpoint() ?? Path.Combine(w.Sources.DemoDir, "Stable-diffusion",
            w.Sources.UsesSdxlDemoModel ? GenerationWorkspace.DemoXlCheckpointFile : GenerationWorkspace.DemoCheckpointFile);
        return Path.GetFileName(path);
    }

    private JsonArray Checkpoints()
    {
        var w = Workspace(_options.Checkpoint);
        var dirs = w.Catalog.Options.EffectiveCheckpointDirs.Append(Path.Combine(w.Sources.DemoDir, "Stable-diffusion"));
        var files = dirs.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories)
                .Where(f => CheckpointEntry.Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Select(f => (Dir: d, File: f)))
            .DistinctBy(x => x.File, StringComparer.Ordinal);
        return new JsonArray([.. files.Select(x =>
        {
            var rel = Path.GetRelativePath(x.Dir, x.File);
            return (JsonNode)new JsonObject
            {
                ["title"] = rel,
                ["model_name"] = Path.GetFileNameWithoutExtension(rel.Replace('/', '_').Replace('\\', '_')),
                ["hash"] = null,
                ["sha256"] = null,
                ["filename"] = x.File,
                ["config"] = null,
            };
        })]);
    }

    private JsonArray Loras()
    {
        var catalog = Workspace(_options.Checkpoint).Catalog;
        return new JsonArray([.. catalog.Loras.Select(e => (JsonNode)new JsonObject
        {
            ["name"] = e.Name,
            ["alias"] = catalog.AliasOf(e),
            ["path"] = e.FilePath,
            ["metadata"] = new JsonObject([.. e.Metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]),
        })]);
    }

    private async Task<IResult> Upscalers(HttpContext ctx)
    {
        var w = Workspace(_options.Checkpoint);
        var items = await _bridge.ListUpscalersAsync(UpscalerLocations.Folders(w.Sources.Settings), ctx.RequestAborted).ConfigureAwait(false);
        return Results.Json(new JsonArray([.. items.Select(u => (JsonNode)new JsonObject
        {
            ["name"] = u.Name,
            ["model_name"] = u.Kind,
            ["model_path"] = string.IsNullOrEmpty(u.Path) ? null : u.Path,
            ["model_url"] = null,
            ["scale"] = 4,
        })]));
    }

    private async Task<IResult> Embeddings(HttpContext ctx)
    {
        var context = await _queue.RunAsync((ct, _) => Prepare(Workspace(_options.Checkpoint), ct), Stopping).ConfigureAwait(false);
        JsonObject Entries(IEnumerable<EmbeddingEntry> entries) => new([.. entries.Select(e => KeyValuePair.Create(e.Name, (JsonNode?)new JsonObject
        {
            ["step"] = null,
            ["sd_checkpoint"] = null,
            ["sd_checkpoint_name"] = null,
            ["shape"] = context.Embeddings?.ExpectedShape,
            ["vectors"] = e.Ids.Count,
        }))]);
        return Results.Json(new JsonObject
        {
            ["loaded"] = Entries(context.Embeddings?.Loaded ?? []),
            ["skipped"] = Entries(context.Embeddings?.Skipped ?? []),
        });
    }

    private async Task<IResult> SetOptions(HttpContext ctx)
    {
        var changes = ParseObject(await ReadBody(ctx.Request).ConfigureAwait(false));
        var checkpoint = _options.Apply(changes);
        if (checkpoint is not null)
        {
            // Loaded in the queue, so a running job keeps its model; an unknown name leaves the current one in place.
            await _queue.RunAsync(async (ct, _) => await Prepare(Workspace(checkpoint), ct).ConfigureAwait(false), Stopping).ConfigureAwait(false);
            _options.SetCheckpoint(checkpoint);
        }
        return Results.Json(new JsonObject());
    }

    private JsonObject ProgressJson()
    {
        var p = _queue.Progress;
        double fraction = p is null ? 0 : (double)(p.Batch * p.TotalSteps + p.Step) / Math.Max(1, p.BatchCount * p.TotalSteps);
        return new JsonObject
        {
            ["progress"] = fraction,
            ["eta_relative"] = p?.Remaining.TotalSeconds ?? 0,
            ["state"] = new JsonObject
            {
                ["skipped"] = _queue.Skipped,
                ["interrupted"] = _queue.Interrupted,
                ["stopping_generation"] = false,
                ["job"] = _queue.Busy ? "txt2img" : "",
                ["job_count"] = _queue.JobCount,
                ["job_timestamp"] = _queue.JobTimestamp,
                ["job_no"] = p?.Batch ?? 0,
                ["sampling_step"] = p?.Step ?? 0,
                ["sampling_steps"] = p?.TotalSteps ?? 0,
            },
            ["current_image"] = null,
            ["textinfo"] = null,
        };
    }

    private async Task<IResult> PngInfo(HttpContext ctx)
    {
        var json = ParseObject(await ReadBody(ctx.Request).ConfigureAwait(false));
        var image = Txt2ImgRequest.Str(json, "image", "", int.MaxValue);
        // A1111 accepts a data URL or bare base64.
        int comma = image.StartsWith("data:", StringComparison.Ordinal) ? image.IndexOf(',', StringComparison.Ordinal) : -1;
        byte[] png;
        try
        {
            png = Convert.FromBase64String(image[(comma + 1)..]);
        }
        catch (FormatException)
        {
            throw ApiError.Invalid("image", "is not base64");
        }
        IReadOnlyDictionary<string, string> chunks;
        try
        {
            chunks = PngText.Read(png);
        }
        catch (InvalidDataException ex)
        {
            throw ApiError.Invalid("image", ex.Message);
        }
        var text = chunks.GetValueOrDefault("parameters") ?? "";
        var parameters = new JsonObject();
        if (text.Length > 0)
        {
            var info = Infotext.Parse(text);
            parameters["Prompt"] = info.Prompt;
            parameters["Negative prompt"] = info.NegativePrompt;
            foreach (var (k, v) in info.Parameters) parameters[k] = v;
        }
        return Results.Json(new JsonObject
        {
            ["info"] = text,
            ["items"] = new JsonObject([.. chunks.Where(c => c.Key != "parameters").Select(c => KeyValuePair.Create(c.Key, (JsonNode?)c.Value))]),
            ["parameters"] = parameters,
        });
    }
}
