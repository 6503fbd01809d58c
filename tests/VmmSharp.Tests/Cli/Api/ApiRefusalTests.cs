using System.Net;
using System.Net.Sockets;
using System.Text;
using VmmSharp.Tests.Guests;
using VmmSharp.Tests.Support;
using static VmmSharp.Tests.Cli.Api.ApiCalls;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>One vmm waiting for its configuration, and the requests its API refuses, each with a 400 that says why.</summary>
public sealed class ApiRefusalTests(ApiRefusalTests.Server server) : IClassFixture<ApiRefusalTests.Server>
{
    /// <summary>The vmm these tests share; none of them gives it a boot source, so it never starts a guest.</summary>
    public sealed class Server : IDisposable
    {
        private readonly Lazy<VmmApiProcess> _process = new(() => VmmApiProcess.Start());

        public HttpClient Client => _process.Value.Client;

        public string SocketPath => _process.Value.SocketPath;

        public void Dispose()
        {
            if (_process.IsValueCreated)
            {
                _process.Value.Dispose();
            }
        }
    }

    private HttpClient Client
    {
        get
        {
            KvmRequirement.Ensure();
            return server.Client;
        }
    }

    [Fact]
    public void AnUnknownFieldIsRefusedByName()
    {
        Answer a = Client.Put("/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128, "vcpus": 2}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Contains("'vcpus' could not be mapped", a.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingRequiredFieldIsRefusedByName()
    {
        Answer a = Client.Put("/machine-config", """{"vcpu_count": 1}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Contains("mem_size_mib", a.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedJsonIsRefusedWithWhereItBroke()
    {
        Answer a = Client.Put("/machine-config", """{"vcpu_count": 1,""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.StartsWith("invalid MachineConfiguration body: ", a.Fault, StringComparison.Ordinal);
        Assert.Contains("BytePositionInLine", a.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void ABodyOverTheBoundIsRefusedWith413()
    {
        string big = $$"""{"kernel_image_path": "{{new string('k', 60_000)}}"}""";
        Answer a = Client.Put("/boot-source", big);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, a.Status);
        Assert.Contains("over the limit of 51200 bytes", a.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void ABodyOverTheBoundWithoutALengthIsRefusedWith413()
    {
        // Chunked: the bound holds while reading, not only against Content-Length.
        using var request = new HttpRequestMessage(HttpMethod.Put, "/boot-source")
        {
            Content = new StreamContent(new MemoryStream(new byte[200_000])),
        };
        request.Headers.TransferEncodingChunked = true;
        using HttpResponseMessage response = Client.Send(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public void AWrongMethodGets400NamingMethodAndPath()
    {
        Answer a = Client.Get("/boot-source");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Equal("invalid request method and/or path: GET /boot-source", a.Fault);
    }

    [Fact]
    public void AnUnknownPathGets400NamingIt()
    {
        Answer a = Client.Put("/balloon", """{"amount_mib": 1}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Equal("invalid request method and/or path: PUT /balloon", a.Fault);
    }

    [Fact]
    public void AMissingKernelFileIsRefusedNamingTheFile()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"vmmsharp-no-kernel-{Guid.NewGuid():N}");
        Answer a = Client.Put("/boot-source", $$"""{"kernel_image_path": {{Quoted(missing)}}}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Equal($"kernel_image_path '{missing}': the kernel file does not exist", a.Fault);
    }

    [Fact]
    public void InstanceStartWithoutABootSourceIsRefused()
    {
        Answer a = Client.Put("/actions", """{"action_type": "InstanceStart"}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Contains("without a kernel", a.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownActionIsRefusedNamingTheOnesThereAre()
    {
        Answer a = Client.Put("/actions", """{"action_type": "Reboot"}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Equal("action_type 'Reboot': give InstanceStart, SendCtrlAltDel or FlushMetrics", a.Fault);
    }

    [Theory]
    [InlineData("PATCH", "/vm", """{"state": "Paused"}""", "pausing: the microVM has not started yet")]
    [InlineData("PUT", "/actions", """{"action_type": "SendCtrlAltDel"}""", "SendCtrlAltDel: the microVM has not started yet")]
    [InlineData("PUT", "/actions", """{"action_type": "FlushMetrics"}""", "FlushMetrics: metrics are not configured")]
    [InlineData("PUT", "/snapshot/create", """{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}""", "snapshot/create: the microVM has not started yet")]
    public void WhatNeedsARunningMicroVmIsRefusedBeforeTheStart(string method, string path, string body, string expected)
    {
        Answer a = Client.Send(new HttpMethod(method), path, body);
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.StartsWith(expected, a.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void ADriveWhoseBodyIdDiffersFromThePathIsRefused()
    {
        Answer a = Client.Put("/drives/rootfs", """{"drive_id": "other", "is_root_device": true, "path_on_host": "/dev/null", "is_read_only": true}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Equal("the id in the path ('rootfs') does not match drive_id in the body ('other')", a.Fault);
    }

    [Fact]
    public void ASecondClientNeitherWaitsForNorCorruptsARequestInFlight()
    {
        HttpClient client = Client;
        // Client A sends its headers and half its body, then stalls.
        byte[] body = Encoding.UTF8.GetBytes("""{"vcpu_count": 3, "mem_size_mib": 96}""");
        using var a = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        a.Connect(new UnixDomainSocketEndPoint(server.SocketPath));
        a.Send(Encoding.ASCII.GetBytes($"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n"));
        a.Send(body.AsSpan(0, 10));
        Thread.Sleep(200);

        // Client B's whole request goes through meanwhile.
        AssertNoContent(client.Put("/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256}"""));
        Assert.Equal(2, client.Get("/machine-config").Json.GetProperty("vcpu_count").GetInt32());

        // A's request, completed, is applied whole: neither B's bytes nor B's values got into it.
        a.Send(body.AsSpan(10));
        byte[] answer = new byte[4096];
        a.ReceiveTimeout = 30_000;
        int n = a.Receive(answer);
        Assert.StartsWith("HTTP/1.1 204", Encoding.ASCII.GetString(answer, 0, n), StringComparison.Ordinal);
        var config = client.Get("/machine-config").Json;
        Assert.Equal(3, config.GetProperty("vcpu_count").GetInt32());
        Assert.Equal(96, config.GetProperty("mem_size_mib").GetInt32());
    }

    [Fact]
    public void ManyClientsAtOnceEachGetTheirDriveConfigured()
    {
        HttpClient client = Client;
        string image = TestGuests.MarkerKernel; // any existing file will do as an image
        Answer[] answers = new Answer[16];
        Parallel.For(0, answers.Length, i => answers[i] = client.Put($"/drives/d{i}",
            $$"""{"drive_id": "d{{i}}", "is_root_device": false, "path_on_host": {{Quoted(image)}}, "is_read_only": true}"""));
        Assert.All(answers, AssertNoContent);
        var drives = client.Get("/vm/config").Json.GetProperty("drives").EnumerateArray().Select(d => d.GetProperty("drive_id").GetString()).ToHashSet();
        Assert.True(Enumerable.Range(0, answers.Length).All(i => drives.Contains($"d{i}")), string.Join(",", drives));
    }
}
