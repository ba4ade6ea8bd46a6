using LoraBridge.Batch;

namespace LoraBridge.Batch.Tests;

public class BatchTemplateTests
{
    [Fact]
    public void PlainLinesArePrompts()
    {
        var jobs = BatchTemplate.Render("a cat\n\n  a dog  \n", "t.sbn");
        Assert.Equal(["a cat", "a dog"], jobs.Select(j => j.Prompt));
        Assert.Equal([1, 3], jobs.Select(j => j.Line));
        Assert.All(jobs, j => Assert.Null(j.Seed));
    }

    [Fact]
    public void LoraAndRangeHelpers()
    {
        var jobs = BatchTemplate.Render("{{ for w in range 0 1 0.25 }}a cat {{ lora \"style\" w }}\n{{ end }}", "t.sbn");
        Assert.Equal(
            ["a cat <lora:style:0>", "a cat <lora:style:0.25>", "a cat <lora:style:0.5>", "a cat <lora:style:0.75>", "a cat <lora:style:1>"],
            jobs.Select(j => j.Prompt));
    }

    [Fact]
    public void RangeHasNoFloatDrift()
    {
        var jobs = BatchTemplate.Render("{{ for w in range 0 1 0.1 }}{{ w }}\n{{ end }}", "t.sbn");
        Assert.Equal(11, jobs.Count);
        Assert.Equal("1", jobs[^1].Prompt);
        Assert.Equal("0.3", jobs[3].Prompt);
    }

    [Fact]
    public void XySweepMakesJobsWithSettingsAndLabels()
    {
        const string template = """
            {{ for cell in xy [0.5, 1] [1, 2, 3] }}
            {{ job {prompt: "a cat " + (lora "demo" cell.x), seed: cell.y, steps: 4, x: cell.x, y: cell.y} }}
            {{ end }}
            """;
        var jobs = BatchTemplate.Render(template, "sweep.sbn");
        Assert.Equal(6, jobs.Count);
        Assert.Equal("a cat <lora:demo:0.5>", jobs[0].Prompt);
        Assert.Equal(1, jobs[0].Seed);
        Assert.Equal(4, jobs[0].Steps);
        Assert.Equal(("1", "3"), (jobs[5].X, jobs[5].Y));
        Assert.Equal(3, jobs[5].Seed);
    }

    [Fact]
    public void JobsCarryImg2ImgAndHiresSettings()
    {
        var jobs = BatchTemplate.Render(
            "{{ job {prompt: \"a\", init_image: \"in.png\", denoise: 0.4, resize_mode: \"Crop and resize\"} }}\n" +
            "{{ job {prompt: \"b\", hires: true, hr_scale: 1.5, hr_steps: 6, hr_upscaler: \"Latent (nearest)\"} }}\n" +
            "{{ job {prompt: \"c\", hires: false} }}", "t.sbn");
        Assert.Equal(("in.png", 0.4, "Crop and resize"), (jobs[0].InitImage, jobs[0].Denoise, jobs[0].ResizeMode));
        Assert.Equal((true, 1.5, 6, "Latent (nearest)"), (jobs[1].Hires, jobs[1].HrScale, jobs[1].HrSteps, jobs[1].HrUpscaler));
        Assert.False(jobs[2].Hires);
        Assert.Null(jobs[2].InitImage);
    }

    [Fact]
    public void PromptWithNewlineStaysOneJob()
    {
        var jobs = BatchTemplate.Render("{{ job {prompt: \"a\\nb\"} }}", "t.sbn");
        Assert.Equal("a\nb", Assert.Single(jobs).Prompt);
    }

    [Fact]
    public void ParseErrorReportsFileLineAndColumn()
    {
        var ex = Assert.Throws<BatchTemplateException>(() => BatchTemplate.Render("a cat\n{{ for x in [1,2] }}\n{{ x + }}\n", "bad.sbn"));
        var error = ex.Errors[0];
        Assert.Equal("bad.sbn", error.File);
        Assert.Equal(3, error.Line);
        Assert.True(error.Column > 1);
        Assert.Contains("bad.sbn(3,", ex.Message);
    }

    [Fact]
    public void RuntimeErrorReportsPosition()
    {
        var ex = Assert.Throws<BatchTemplateException>(() => BatchTemplate.Render("ok\n  {{ undefined_thing }}", "run.sbn"));
        Assert.Equal((2, 6), (ex.Errors[0].Line, ex.Errors[0].Column));
    }

    [Fact]
    public void UnknownJobSettingIsAnError()
    {
        var ex = Assert.Throws<BatchTemplateException>(() => BatchTemplate.Render("{{ job {prompt: \"a\", sead: 1} }}", "t.sbn"));
        Assert.Contains("sead", ex.Message);
    }

    [Fact]
    public void DataRowsAreVisible()
    {
        var data = BatchData.ParseCsv("subject,seed\n\"a cat, sitting\",5\na dog,6\n", "d.csv");
        var jobs = BatchTemplate.Render("{{ for r in data }}{{ job {prompt: r.subject, seed: r.seed} }}\n{{ end }}", "t.sbn", data);
        Assert.Equal(["a cat, sitting", "a dog"], jobs.Select(j => j.Prompt));
        Assert.Equal([5L, 6L], jobs.Select(j => j.Seed!.Value));
    }

    [Fact]
    public void CsvRowWithWrongFieldCountNamesTheLine()
    {
        var ex = Assert.Throws<BatchTemplateException>(() => BatchData.ParseCsv("a,b\n1,2\n3\n", "d.csv"));
        Assert.Equal(3, ex.Errors[0].Line);
    }

    [Fact]
    public void JsonDataMustBeAnArray()
    {
        Assert.Throws<BatchTemplateException>(() => BatchData.ParseJson("{\"a\":1}", "d.json"));
        var rows = BatchData.ParseJson("[{\"a\":1,\"b\":\"x\"}]", "d.json");
        Assert.Equal(1L, rows[0]["a"]);
    }
}

public class BatchTemplateLineTests
{
    [Fact]
    public void JobsNameTheTemplateLineNotTheRenderedLine()
    {
        const string template = "# sweep\n{{ for w in [1, 2] }}\n\nplain {{ w }}\n{{ job {prompt: \"job \" + w} }}\n{{ end }}\nlast\n";
        var jobs = BatchTemplate.Render(template, "t.sbn");
        Assert.Equal(["# sweep", "plain 1", "job 1", "plain 2", "job 2", "last"], jobs.Select(j => j.Prompt));
        Assert.Equal([1, 4, 5, 4, 5, 7], jobs.Select(j => j.Line));
    }

    [Fact]
    public void ALineStartingWithAnExpressionNamesThatExpressionsLine()
    {
        var jobs = BatchTemplate.Render("{{ for s in [1, 2] }}\n   {{ \"a\" }} cat {{ s }}\n{{ end }}", "t.sbn");
        Assert.Equal(["a cat 1", "a cat 2"], jobs.Select(j => j.Prompt));
        Assert.Equal([2, 2], jobs.Select(j => j.Line));
    }

    [Fact]
    public void BadJobSettingsNameTheTemplateLine()
    {
        var ex = Assert.Throws<BatchTemplateException>(() =>
            BatchTemplate.Render("{{ for s in [1] }}\n\n{{ job {prompt: \"a\", sead: s} }}\n{{ end }}", "t.sbn"));
        var error = Assert.Single(ex.Errors);
        Assert.Equal(("t.sbn", 3), (error.File, error.Line));
        Assert.Contains("sead", error.Message);
    }
}
