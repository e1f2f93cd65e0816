# The flicamera image of the fliswarm test bed: the camera simulator
# (cmd/flicamera-sim, built with CGO_ENABLED=0 so it is fully static) alone
# in an empty image. No base image is needed, so it builds without any
# outside registry. hack/testbed builds it with the directory holding the
# binary as context, then tags and pushes it to the bed's registry.
FROM scratch
COPY flicamera-sim /flicamera-sim
EXPOSE 19995
ENTRYPOINT ["/flicamera-sim"]
