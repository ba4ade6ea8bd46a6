using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using LoraBridge.Engine;

namespace LoraBridge.Server.Tests;

/// <summary>
/// What the server refuses before any job runs: no Python here, and the workspace factory counts its calls, so
/// "nothing ran" is checked rather than assumed.
/// </summary>
public sealed class RequestHandlingTests : IAsyncLifetime
{
    private int _workspacesMade;
    private A1111Server _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var settings = new ServerSettings { Port = 0, ApiAuth = "alice:s3cret, carol:pa:ss", MaxRequestBodyBytes = 64 * 1024 };
        _server = new A1111Server(settings, _ =>
        {
            Interlocked.Increment(ref _workspacesMade);
            throw new InvalidOperationException("no workspace in these tests");
        }, bridge: null!);
        await _server.StartAsync(CancellationToken.None);
        _http = new HttpClient { BaseAddress = _server.Address };
        _http.DefaultRequestHeaders.Authorization = Basic("alice:s3cret");
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private static AuthenticationHeaderValue Basic(string userPass) => new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(userPass)));

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<JsonObject> ErrorBody(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("   at ", text); // never a stack trace
        var json = Assert.IsType<JsonObject>(JsonNode.Parse(text));
        foreach (var key in new[] { "error", "detail", "body", "errors" }) Assert.True(json.ContainsKey(key), $"no '{key}' in {text}");
        return json;
    }

    [Fact]
    public async Task BindsToLoopbackByDefault()
    {
        Assert.True(new ServerSettings().IsLoopback);
        Assert.Equal(IPAddress.Loopback.ToString(), _server.Address!.Host);
        Assert.False(new ServerSettings { Listen = "0.0.0.0" }.IsLoopback);
        Assert.Throws<ArgumentException>(() => new ServerSettings { ApiAuth = "nopassword" }.Validate());
        await Task.CompletedTask;
    }

    [Theory]
    [InlineData("alice:s3cret")]
    [InlineData("carol:pa:ss")]
    public async Task EveryPairOfACommaSeparatedApiAuthIsAccepted(string credentials)
    {
        using var client = new HttpClient { BaseAddress = _server.Address };
        client.DefaultRequestHeaders.Authorization = Basic(credentials);
        using var ping = await client.GetAsync("/internal/ping");
        Assert.Equal(HttpStatusCode.OK, ping.StatusCode);
        Assert.Equal(["alice:s3cret", "carol:pa:ss"], new ServerSettings { ApiAuth = "alice:s3cret, carol:pa:ss" }.Credentials);
        Assert.Throws<ArgumentException>(() => new ServerSettings { ApiAuth = "alice:s3cret,nopassword" }.Validate());
        Assert.Throws<ArgumentException>(() => new ServerSettings { ApiAuth = "alice:s3cret,:nouser" }.Validate());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("carol:pa")]
    [InlineData("alice:s3cret,carol:pa:ss")]
    [InlineData("alice:wrong")]
    [InlineData("bob:s3cret")]
    public async Task WrongOrMissingCredentialsGet401AndNothingRuns(string? credentials)
    {
        using var client = new HttpClient { BaseAddress = _server.Address };
        if (credentials is not null) client.DefaultRequestHeaders.Authorization = Basic(credentials);
        using var response = await client.PostAsync("/sdapi/v1/txt2img", Json("""{"prompt":"a lighthouse","steps":1,"width":64,"height":64}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Basic", response.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal(0, _workspacesMade);
        using var ping = await client.GetAsync("/internal/ping");
        Assert.Equal(HttpStatusCode.Unauthorized, ping.StatusCode);
    }

    [Theory]
    [InlineData("""{"prompt": "a lighthouse", "steps": """, 400, "malformed JSON")]
    [InlineData("""["not", "an", "object"]""", 422, "JSON object")]
    [InlineData("""{"steps": 0}""", 422, "steps: must be between 1 and 150, got 0")]
    [InlineData("""{"steps": 100000}""", 422, "steps: must be between 1 and 150")]
    [InlineData("""{"steps": "many"}""", 422, "steps: must be an integer")]
    [InlineData("""{"width": 100000}""", 422, "width: must be between 8 and 2048")]
    [InlineData("""{"width": 100, "height": 64}""", 422, "multiples of 8, got 100x64")]
    [InlineData("""{"batch_size": 1000}""", 422, "batch_size: must be between 1 and 8")]
    [InlineData("""{"n_iter": -1}""", 422, "n_iter: must be between 1 and 100")]
    [InlineData("""{"seed": 99999999999}""", 422, "seed: must be -1 or between 0 and")]
    [InlineData("""{"override_settings": {"CLIP_stop_at_last_layers": 40}}""", 422, "CLIP_stop_at_last_layers: must be between 1 and 12")]
    public async Task BadRequestsAre4xxWithA1111sErrorShapeAndTheServerKeepsServing(string body, int status, string message)
    {
        using var response = await _http.PostAsync("/sdapi/v1/txt2img", Json(body));
        Assert.Equal(status, (int)response.StatusCode);
        var error = await ErrorBody(response);
        Assert.Contains(message, (string)error["detail"]!);
        Assert.Equal(0, _workspacesMade);

        using var samplers = await _http.GetAsync("/sdapi/v1/samplers");
        Assert.Equal(HttpStatusCode.OK, samplers.StatusCode);
        var names = JsonNode.Parse(await samplers.Content.ReadAsStringAsync())!.AsArray().Select(s => (string)s!["name"]!);
        Assert.Equal(SamplerNames.Names, names);
    }

    [Fact]
    public async Task APromptLongerThanTheLimitIsRefusedUnread()
    {
        var prompt = new string('a', 20_001);
        using var response = await _http.PostAsync("/sdapi/v1/txt2img", Json($$"""{"prompt": "{{prompt}}"}"""));
        Assert.Equal(422, (int)response.StatusCode);
        Assert.Contains("prompt: is 20001 characters long", (string)(await ErrorBody(response))["detail"]!);
    }

    [Fact]
    public async Task ABodyOverTheSizeLimitIs413()
    {
        var big = "{\"prompt\": \"" + new string('a', 100 * 1024) + "\"}";
        using var response = await _http.PostAsync("/sdapi/v1/txt2img", Json(big));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("65536 bytes", (string)(await ErrorBody(response))["detail"]!);
        using var ping = await _http.GetAsync("/internal/ping");
        Assert.Equal(HttpStatusCode.OK, ping.StatusCode);
    }

    [Fact]
    public async Task Img2ImgRefusesAMissingImageAndMasksAndOpenApiListsTheRoutes()
    {
        using var noImage = await _http.PostAsync("/sdapi/v1/img2img", Json("{}"));
        Assert.Equal(422, (int)noImage.StatusCode);
        Assert.Contains("init_images", (string)(await ErrorBody(noImage))["detail"]!);
        using var notBase64 = await _http.PostAsync("/sdapi/v1/img2img", Json("""{"init_images": ["%%%"]}"""));
        Assert.Equal(422, (int)notBase64.StatusCode);
        using var badDenoise = await _http.PostAsync("/sdapi/v1/img2img", Json("""{"init_images": ["iVBORw0KGgo="], "denoising_strength": 2}"""));
        Assert.Contains("denoising_strength: must be between 0 and 1", (string)(await ErrorBody(badDenoise))["detail"]!);
        using var mask = await _http.PostAsync("/sdapi/v1/img2img", Json("""{"init_images": ["iVBORw0KGgo="], "mask": "iVBORw0KGgo="}"""));
        Assert.Equal(HttpStatusCode.NotImplemented, mask.StatusCode);
        Assert.Equal(0, _workspacesMade);

        var doc = JsonNode.Parse(await _http.GetStringAsync("/openapi.json"))!;
        var paths = doc["paths"]!.AsObject();
        Assert.NotNull(paths["/sdapi/v1/txt2img"]!["post"]);
        Assert.NotNull(paths["/sdapi/v1/options"]!["get"]);
        Assert.NotNull(paths["/sdapi/v1/options"]!["post"]);
        Assert.NotNull(paths["/internal/ping"]!["get"]);
    }

    [Fact]
    public async Task ProgressIsIdleAndOptionsRejectABadValue()
    {
        var progress = JsonNode.Parse(await _http.GetStringAsync("/sdapi/v1/progress"))!;
        Assert.Equal(0.0, (double)progress["progress"]!);
        Assert.Equal(0, (int)progress["state"]!["job_count"]!);

        using var bad = await _http.PostAsync("/sdapi/v1/options", Json("""{"CLIP_stop_at_last_layers": 2, "randn_source": "TPU"}"""));
        Assert.Equal(422, (int)bad.StatusCode);
        Assert.Contains("randn_source", (string)(await ErrorBody(bad))["detail"]!);
    }
}
