using VmmSharp.Cli.Api;
using VmmSharp.Machine;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>The pre-boot configuration's checks and what <c>InstanceStart</c> builds from it.</summary>
public class VmConfigurationTests
{
    private static readonly string AFile = typeof(VmConfigurationTests).Assembly.Location;

    private static Drive Disk(string id, bool root, bool readOnly = false, string? partuuid = null) =>
        new() { DriveId = id, IsRootDevice = root, PathOnHost = AFile, IsReadOnly = readOnly, Partuuid = partuuid };

    [Fact]
    public void TheRootDriveBecomesVdaAndTheCommandLineNamesItAsFirecrackerDoes()
    {
        var config = new VmConfiguration();
        config.SetBootSource(new BootSource { KernelImagePath = AFile, BootArgs = "console=ttyS0 quiet" });
        config.SetDrive("data", Disk("data", root: false));
        config.SetDrive("rootfs", Disk("rootfs", root: true, readOnly: true));
        MachineOptions options = config.ToMachineOptions();
        Assert.Equal("console=ttyS0 quiet root=/dev/vda ro", options.CommandLine);
        Assert.Equal(["rootfs", "data"], options.Disks.Select(d => d.Serial));
        Assert.True(options.Disks[0].ReadOnly);
    }

    [Fact]
    public void ARootDriveWithAPartuuidIsNamedByIt()
    {
        var config = new VmConfiguration();
        config.SetDrive("rootfs", Disk("rootfs", root: true, partuuid: "0eaa91a0-01"));
        Assert.Equal("console=ttyS0 root=PARTUUID=0eaa91a0-01 rw", config.CommandLine());
    }

    [Fact]
    public void ASecondRootDriveIsRefusedAndTheFirstStays()
    {
        var config = new VmConfiguration();
        config.SetDrive("a", Disk("a", root: true));
        var fault = Assert.Throws<ApiFault>(() => config.SetDrive("b", Disk("b", root: true)));
        Assert.Equal("drive 'b': a root block device already exists ('a')", fault.Message);
        Assert.Single(config.Drives);
    }

    [Fact]
    public void PuttingADriveAgainReplacesIt()
    {
        var config = new VmConfiguration();
        config.SetDrive("a", Disk("a", root: false));
        config.SetDrive("a", Disk("a", root: false, readOnly: true));
        Assert.True(Assert.Single(config.Drives).IsReadOnly);
    }

    [Theory]
    [InlineData(0, 128, "vcpu_count 0: give 1 to 254")]
    [InlineData(1, 0, "mem_size_mib 0: give 2 to 16777216")]
    [InlineData(1, 1, "mem_size_mib 1: guest memory size 0x100000 (1048576 bytes) is below the minimum of 0x200000 (2 MiB)")]
    public void AMachineConfigOutOfRangeIsRefusedNamingTheValue(int cpus, long mib, string expected)
    {
        var config = new VmConfiguration();
        var fault = Assert.Throws<ApiFault>(() => config.SetMachine(new MachineConfiguration { VcpuCount = cpus, MemSizeMib = mib }));
        Assert.Equal(expected, fault.Message);
        Assert.Equal(1, config.Machine.VcpuCount);
    }

    [Fact]
    public void APatchChangesOnlyTheFieldsItGives()
    {
        var config = new VmConfiguration();
        config.SetMachine(new MachineConfiguration { VcpuCount = 2, MemSizeMib = 256 });
        config.PatchMachine(new MachineConfigurationPatch { MemSizeMib = 512 });
        Assert.Equal(2, config.Machine.VcpuCount);
        Assert.Equal(512, config.Machine.MemSizeMib);
    }

    [Fact]
    public void WhatVmmCannotDoIsRefusedNotIgnored()
    {
        var config = new VmConfiguration();
        Assert.Contains("smt", Assert.Throws<ApiFault>(() => config.SetMachine(new MachineConfiguration { VcpuCount = 2, MemSizeMib = 128, Smt = true })).Message, StringComparison.Ordinal);
        Assert.Contains("rate_limiter is not supported", Assert.Throws<ApiFault>(() => config.SetDrive("a", new Drive
        {
            DriveId = "a",
            IsRootDevice = false,
            PathOnHost = AFile,
            RateLimiter = new RateLimiter(),
        })).Message, StringComparison.Ordinal);
        Assert.Contains("mtu is not supported", Assert.Throws<ApiFault>(() => config.SetNetworkInterface("eth0", new NetworkInterface
        {
            IfaceId = "eth0",
            HostDevName = "tap0",
            Mtu = 1500,
        })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANetworkInterfaceMapsToATapCardWithItsMac()
    {
        var config = new VmConfiguration();
        config.SetBootSource(new BootSource { KernelImagePath = AFile });
        config.SetNetworkInterface("eth0", new NetworkInterface { IfaceId = "eth0", HostDevName = "tap7", GuestMac = "06:00:ac:10:00:02" });
        NetOptions net = Assert.Single(config.ToMachineOptions().Networks);
        Assert.Equal("tap7", net.Tap);
        Assert.Equal([0x06, 0x00, 0xac, 0x10, 0x00, 0x02], net.Mac);
        var fault = Assert.Throws<ApiFault>(() => config.SetNetworkInterface("eth1", new NetworkInterface { IfaceId = "eth1", HostDevName = "tap7" }));
        Assert.Equal("network interface 'eth1': host_dev_name 'tap7' is already used by 'eth0'", fault.Message);
    }

    [Fact]
    public void AVsockBecomesTheMachinesVsockDevice()
    {
        var config = new VmConfiguration();
        config.SetBootSource(new BootSource { KernelImagePath = AFile });
        config.SetVsock(new Vsock { GuestCid = 3, UdsPath = "/tmp/v.sock" });
        Assert.Equal(new VsockOptions(3, "/tmp/v.sock"), config.ToMachineOptions().Vsock);
        Assert.Equal("vsock: guest_cid 2 is reserved or too large: give 3 to 4294967294",
            Assert.Throws<ApiFault>(() => config.SetVsock(new Vsock { GuestCid = 2, UdsPath = "/tmp/v.sock" })).Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("a/b")]
    public void AnIdThatIsNotLettersDigitsOrUnderscoreIsRefused(string id)
    {
        var config = new VmConfiguration();
        Assert.Throws<ApiFault>(() => config.SetDrive(id, Disk(id, root: false)));
    }
}
