using System.Diagnostics;
using System.Text;
using System.Text.Json;
using VmmSharp.Cli.Api;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>Metrics lines to a file or FIFO: never blocking, whole lines or none.</summary>
public class MetricsSinkTests
{
    private static string Fifo()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-fifo-{Guid.NewGuid():N}");
        using Process mkfifo = Process.Start("mkfifo", path);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    [Fact]
    public void AFifoNobodyReadsNeitherBlocksTheOpenNorAWriteAndFullLinesAreDroppedAndCounted()
    {
        string fifo = Fifo();
        try
        {
            var clock = Stopwatch.StartNew();
            using MetricsSink sink = MetricsSink.Open(fifo);
            byte[] line = Encoding.ASCII.GetBytes($$"""{"pad":"{{new string('x', 1000)}}"}""");
            for (int i = 0; i < 200; i++)
            {
                sink.WriteLine(line);
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
            Assert.True(sink.LinesDropped > 0, "a 64 KiB pipe cannot hold 200 KiB");
            Assert.Equal(200, sink.LinesWritten + sink.LinesDropped);

            // What did get into the pipe is whole lines.
            using var reader = new FileStream(fifo, FileMode.Open, FileAccess.Read);
            byte[] got = new byte[sink.LinesWritten * (line.Length + 1)];
            reader.ReadExactly(got);
            foreach (string l in Encoding.ASCII.GetString(got).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Assert.Equal(1000, JsonDocument.Parse(l).RootElement.GetProperty("pad").GetString()!.Length);
            }
        }
        finally
        {
            File.Delete(fifo);
        }
    }

    [Fact]
    public void AFileGetsOneLinePerWriteAppended()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-metrics-{Guid.NewGuid():N}");
        try
        {
            using (MetricsSink sink = MetricsSink.Open(path))
            {
                Assert.True(sink.WriteLine("{\"a\":1}"u8));
                Assert.True(sink.WriteLine("{\"a\":2}"u8));
            }
            Assert.Equal(["{\"a\":1}", "{\"a\":2}"], File.ReadAllLines(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ALineLongerThanAPipeTakesWholeIsDroppedNotCut()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmmsharp-metrics-{Guid.NewGuid():N}");
        try
        {
            using MetricsSink sink = MetricsSink.Open(path);
            Assert.False(sink.WriteLine(new byte[MetricsSink.MaxLineLength]));
            Assert.Equal(1, sink.LinesDropped);
            Assert.Equal(0, new FileInfo(path).Length);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void APathThatCannotBeOpenedIsAFaultNamingIt()
    {
        var fault = Assert.Throws<ApiFault>(() => MetricsSink.Open("/nonexistent/dir/metrics"));
        Assert.Equal("metrics_path '/nonexistent/dir/metrics': cannot open it: No such file or directory", fault.Message);
    }
}
